"""``relances init`` and ``relances check-config``."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import click

from relances.daemon import storage
from relances.daemon.cli.main import Context, pass_context, warn_unknown_kinds
from relances.daemon.config import load_settings
from relances.daemon.dispatch.channels import unreachable
from relances.daemon.errors import ConfigError, RelancesError
from relances.daemon.ledger import book
from relances.daemon.service.locks import sqlite_database_path
from relances.daemon.service.preflight import preflight
from relances.daemon.storage import App

SHOWN = 20  # unreachable customers listed by check-config


@click.command("init")
@pass_context
def init_command(ctx: Context) -> None:
    """Create the database, or upgrade it to the newest schema."""

    async def body() -> tuple[str | None, str | None, Sequence[str]]:
        app = App.load(ctx.config, ctx.user)
        try:
            app.settings.data_path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            reason = "a file is in the way" if isinstance(exc, FileExistsError) else exc.strerror
            raise ConfigError(f"{app.settings.where('data_dir')}: cannot create "
                              f"{app.settings.data_path}: {reason}") from None
        try:
            before, after = await storage.upgrade(app.engine)
            unknown: Sequence[str] = ()
            if before is not None and before != after:
                async with app.sessions() as session:
                    unknown = await book.kinds_unknown_since_upgrade(session)
            return before, after, unknown
        finally:
            await app.close()

    before, after, unknown = asyncio.run(body())
    if before == after:
        click.echo(f"database is up to date (revision {after})")
    elif before is None:
        click.echo(f"database created (revision {after})")
    else:
        click.echo(f"database upgraded from revision {before} to {after}")
    if unknown:
        click.echo(f"{len(unknown)} customers are now of unknown kind, the previous release "
                   "not telling a business from a customer nobody described; their letters "
                   "claim no penalties nor indemnity until you say what they are "
                   "(`relances customer CODE --kind business|public|consumer`, or a customers "
                   "file with a kind or SIREN column):")
        for code in unknown:
            click.echo(f"  {code}")


@click.command("check-config")
@pass_context
def check_config_command(ctx: Context) -> None:
    """Validate settings, channels and templates; exit 0 when all is well, 1 if not."""
    settings = load_settings(ctx.config)
    for warning in preflight(settings):
        click.echo(f"warning: {warning}", err=True)
    asyncio.run(_warn_about_the_ledger(App(settings=settings, user=ctx.user)))
    click.echo(f"{settings.source}: OK")


async def _warn_about_the_ledger(app: App) -> None:
    """What the settings cannot show but the ledger does (when there is one yet)."""
    database = sqlite_database_path(app.settings.database_url)
    if database is not None and not database.exists():
        return  # checking the settings creates no database
    try:
        await app.ready()
        async with app.sessions() as session:
            await warn_unknown_kinds(session)
            cut_off = await unreachable(session, app.settings, app.plugins)
        for code, level, channels in cut_off[:SHOWN]:
            click.echo(f"warning: {code} : aucun canal du niveau {level} ({channels}) ne peut "
                       "l'atteindre (adresse postale, email ou fax manquant)", err=True)
        if len(cut_off) > SHOWN:
            click.echo(f"warning: … et {len(cut_off) - SHOWN} autres niveaux de clients "
                       "injoignables", err=True)
    except RelancesError:
        pass  # no database yet, or one to upgrade: `relances init` says so
    finally:
        await app.close()


COMMANDS = [init_command, check_config_command]
