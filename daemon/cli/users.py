"""``relances user``: the accounts of the web screen and the API's tokens."""

from __future__ import annotations

import sys

import click

from relances.daemon.cli.main import async_command
from relances.daemon.models import ROLES
from relances.daemon.storage import App
from relances.daemon.web import accounts

ROLE = click.Choice(ROLES)


def read_password() -> str:
    """Asked twice at a terminal; one line of standard input otherwise (for scripts)."""
    if sys.stdin.isatty():
        return str(click.prompt("Mot de passe", hide_input=True, confirmation_prompt=True))
    return sys.stdin.readline().rstrip("\r\n")


@click.group("user")
def user_group() -> None:
    """Web accounts (lecture, gestion, envoi, admin) and API tokens."""


@user_group.command("add")
@click.argument("name")
@click.option("--role", type=ROLE, required=True, help="What the account may do.")
@async_command
async def add_command(app: App, name: str, role: str) -> None:
    """Create the account NAME; its password is asked (or read from stdin)."""
    password = accounts.check_password(read_password())
    async with app.sessions.begin() as session:
        await accounts.add_user(session, name, role=role, password=password)
    click.echo(f"{name}: account created ({role})")


@user_group.command("passwd")
@click.argument("name")
@async_command
async def passwd_command(app: App, name: str) -> None:
    """Change the password of NAME (asked, or read from stdin); its sessions end."""
    async with app.sessions() as session:
        await accounts.user_by_name(session, name)
    password = accounts.check_password(read_password())
    async with app.sessions.begin() as session:
        await accounts.set_password(session, name, password)
    click.echo(f"{name}: password changed")


@user_group.command("role")
@click.argument("name")
@click.argument("role", type=ROLE)
@async_command
async def role_command(app: App, name: str, role: str) -> None:
    """Give the account NAME another role."""
    async with app.sessions.begin() as session:
        previous = await accounts.set_role(session, name, role)
    click.echo(f"{name}: {previous} → {role}")


@user_group.command("disable")
@click.argument("name")
@click.option("--enable", is_flag=True, help="Open the account again.")
@async_command
async def disable_command(app: App, name: str, enable: bool) -> None:
    """Close the account NAME (its sessions end at once), or open it again."""
    async with app.sessions.begin() as session:
        await accounts.set_disabled(session, name, not enable)
    click.echo(f"{name}: {'enabled' if enable else 'disabled'}")


@user_group.command("list")
@async_command
async def list_command(app: App) -> None:
    """The accounts, their roles, and which are disabled."""
    async with app.sessions() as session:
        found = await accounts.users(session)
    for user in found:
        state = "\tdisabled" if user.disabled else ""
        click.echo(f"{user.name}\t{user.role}{state}")
    if not found:
        click.echo("no account yet: `relances user add NAME --role admin`")


@user_group.command("token")
@click.argument("name")
@click.option("--role", type=ROLE, required=True, help="What the program may do.")
@async_command
async def token_command(app: App, name: str, role: str) -> None:
    """Make the API token NAME and print it once (only its hash is kept)."""
    async with app.sessions.begin() as session:
        token = await accounts.create_token(session, name, role=role)
    click.echo(token)
    click.echo(f"{name}: token created ({role}); send it as `Authorization: Bearer …`. "
               "It is not shown again.", err=True)


@user_group.command("revoke")
@click.argument("token_name", metavar="TOKEN-NAME")
@async_command
async def revoke_command(app: App, token_name: str) -> None:
    """Revoke the API token TOKEN-NAME."""
    async with app.sessions.begin() as session:
        revoked = await accounts.revoke_token(session, token_name)
    click.echo(f"{token_name}: {'revoked' if revoked else 'already revoked'}")


COMMANDS = [user_group]
