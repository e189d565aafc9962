"""``relances escalate``: the seed's "Incrémentation de relances"."""

from __future__ import annotations

import datetime as dt

import click

from relances.daemon.cli.main import async_command
from relances.daemon.cli.options import as_of_option
from relances.daemon.escalation.run import escalate
from relances.daemon.ledger import book
from relances.daemon.storage import App

SHOWN = 50


@click.command("escalate")
@click.option("--customer", default=None, help="Only this customer's invoices.")
@click.option("--days", type=click.IntRange(min=0), default=None,
              help="Use this delay for every level in this run, instead of the policy's.")
@as_of_option
@click.option("--dry-run", is_flag=True, help="Show what would change; write nothing.")
@async_command
async def escalate_command(app: App, customer: str | None, days: int | None,
                           as_of: dt.date | None, dry_run: bool) -> None:
    """Raise every eligible overdue invoice by one reminder level."""
    today = as_of or app.settings.today()
    async with app.sessions.begin() as session:
        if customer is not None:
            await book.customer_by_code(session, customer)
        result = await escalate(session, app.settings, as_of=today, user=app.user,
                                customer=customer, days=days, dry_run=dry_run)
    if dry_run:
        for change in result.changes[:SHOWN]:
            click.echo(f"{change.invoice_number} ({change.customer_code}): "
                       f"{change.from_level} → {change.to_level}")
        if len(result.changes) > SHOWN:
            click.echo(f"… and {len(result.changes) - SHOWN} more")
        click.echo(f"dry run: {result.total} invoices would be escalated; nothing written")
        return
    click.echo(str(result))


COMMANDS = [escalate_command]
