"""``relances daemon`` and ``relances status``."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging

import click

from relances.daemon import formatting as fmt
from relances.daemon.cli.main import Context, async_command, pass_context
from relances.daemon.logs import configure_logging
from relances.daemon.service.lifecycle import serve
from relances.daemon.service.status import service_status
from relances.daemon.storage import App


@click.command("daemon")
@click.option("--once", is_flag=True, help="One escalation and one dispatch pass, then exit.")
@pass_context
def daemon_command(ctx: Context, once: bool) -> None:
    """Run the service: escalation and dispatch on the schedule of settings.yaml.

    Stops cleanly on SIGTERM or SIGINT (a second SIGINT forces it); SIGHUP
    reloads the settings and templates.  With web.enabled, it serves the web
    screen too, on web.host:web.port.
    """
    configure_logging("DEBUG" if ctx.verbose > 1 else "INFO")
    # Their INFO lines say nothing an administrator needs (job added, context impl).
    for noisy in ("apscheduler", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    asyncio.run(serve(ctx.config, ctx.user, once=once, beside=_screen))


def _screen(app: App) -> contextlib.AbstractAsyncContextManager[None]:
    """The web screen beside the service when ``web.enabled`` is set."""
    if not app.settings.web.enabled:
        return contextlib.nullcontext()
    from relances.daemon.cli.web import served_beside

    return served_beside(app)


def _when(app: App, value: dt.datetime | None) -> str:
    if value is None:
        return ""
    day, time = fmt.local_time(value, app.settings.zone)
    return f"{day} {time}"


@click.command("status")
@async_command
async def status_command(app: App) -> None:
    """The outbox by state, what waits for a person, the last runs and failures."""
    async with app.sessions() as session:
        status = await service_status(session, app.settings, as_of=app.settings.today())
    states, waiting, runs = status.states, status.waiting, status.runs
    retrying, failures = status.retrying, status.failures
    click.echo("Outbox: " + ", ".join(
        f"{count} {state}" for state, count in states.items()))
    click.echo("\nWaiting for a person (levels that do not send on their own):")
    if not waiting:
        click.echo("  nothing")
    for level, numbers in sorted(waiting.items()):
        shown = ", ".join(numbers[:10]) + (f" … (+{len(numbers) - 10})" if len(numbers) > 10 else "")
        click.echo(f"  level {level}: {len(numbers)} invoices ({shown}) — `relances send`")
    click.echo("\nLast runs:")
    if not runs:
        click.echo("  none yet")
    for run in runs:
        mark = "" if run.ok else " [errors]"
        click.echo(f"  {_when(app, run.started_at)}  {run.job:<9} {run.user:<12} "
                   f"{run.summary}{mark}")
    if status.imports:
        click.echo("\nLast import of each source:")
        for run in status.imports:
            mark = "" if run.ok else " [refused]"
            click.echo(f"  {_when(app, run.started_at)}  {run.job.removeprefix('import:'):<9} "
                       f"{run.summary}{mark}")
    if status.failed_imports:
        click.echo("\nRefused imports:")
        for run in status.failed_imports:
            click.echo(f"  {_when(app, run.started_at)}  {run.summary}")
    if status.last_statement is not None or status.review:
        statement = status.last_statement
        click.echo("\nBank:")
        if statement is not None:
            click.echo(f"  last statement read: {statement.source} ({statement.format}, "
                       f"{fmt.date(statement.date) or 'undated'}, {statement.entries} new "
                       f"entries), {_when(app, statement.read_at)}")
        click.echo(f"  waiting for review: {status.review} entries"
                   + (" — `relances bank review`" if status.review else ""))
    if retrying:
        click.echo("\nTo retry:")
        for reminder in retrying:
            click.echo(f"  {reminder.key}: attempt {reminder.attempts + 1} at "
                       f"{_when(app, reminder.next_attempt_at)} — {reminder.last_error}")
    click.echo("\nLast failures:")
    if not failures:
        click.echo("  none")
    for reminder in failures:
        click.echo(f"  {reminder.key}: {reminder.last_error}")


COMMANDS = [daemon_command, status_command]
