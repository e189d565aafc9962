"""``relances init`` and ``relances check-config``."""

from __future__ import annotations

import asyncio

import click

from relances.daemon import storage
from relances.daemon.cli.main import Context, pass_context
from relances.daemon.config import load_settings
from relances.daemon.service.preflight import preflight
from relances.daemon.storage import App


@click.command("init")
@pass_context
def init_command(ctx: Context) -> None:
    """Create the database, or upgrade it to the newest schema."""

    async def body() -> tuple[str | None, str | None]:
        app = App.load(ctx.config, ctx.user)
        app.settings.data_path.mkdir(parents=True, exist_ok=True)
        try:
            return await storage.upgrade(app.engine)
        finally:
            await app.close()

    before, after = asyncio.run(body())
    if before == after:
        click.echo(f"database is up to date (revision {after})")
    elif before is None:
        click.echo(f"database created (revision {after})")
    else:
        click.echo(f"database upgraded from revision {before} to {after}")


@click.command("check-config")
@pass_context
def check_config_command(ctx: Context) -> None:
    """Validate settings, channels and templates; exit 0 when all is well, 1 if not."""
    settings = load_settings(ctx.config)
    for warning in preflight(settings):
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"{settings.source}: OK")


COMMANDS = [init_command, check_config_command]
