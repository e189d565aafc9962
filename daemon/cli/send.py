"""``relances send``, ``relances reprint`` and ``relances mail``: reminders leaving by
hand, and what comes back."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from relances.daemon import formatting as fmt
from relances.daemon.cli.main import async_command, rendering_command, warn_unknown_kinds
from relances.daemon.cli.options import as_of_option
from relances.daemon.errors import LedgerError

if TYPE_CHECKING:
    # What sends is imported in the commands' bodies: `send` forks its first
    # render worker before it loads the ledger and the channels.
    from relances.daemon.dispatch import outbox
    from relances.daemon.letters.pool import Renderer
    from relances.daemon.storage import App

PROGRESS_FROM = 20
RETRY_FOR = 120.0  # seconds `send` keeps retrying transient failures


def _waiting(app: App) -> Callable[[int, dt.datetime], None]:
    def say(count: int, when: dt.datetime) -> None:
        click.echo(f"  {count} waiting for a retry at {when.astimezone(app.settings.zone):%H:%M:%S}",
                   err=True)

    return say


async def _preview(app: App, request: outbox.Request) -> None:
    """What ``send`` would queue, without writing anything."""
    from relances.daemon.dispatch import outbox
    from relances.daemon.ledger import book

    async with app.sessions() as session:
        rows, already = await outbox.dry_run(session, app.settings, request, user=app.user)
        waiting = await outbox.waiting_for(session, request, make_due=False)
        held = await book.held_for_review(session, request.as_of or app.settings.today())
        paused = await book.paused_by_reply(session, request.as_of or app.settings.today())
    if held:
        click.echo(f"held: {len(held)} customers, a bank payment waiting for review may be "
                   f"theirs ({', '.join(held[:10])}): `relances bank review`")
    if paused:
        click.echo(fmt.printable(f"paused: {len(paused)} customers replied to a reminder "
                                 f"({', '.join(paused[:10])}): `relances customer CODE` shows "
                                 "the reply, `--resume` ends the pause"))
    for row in rows:
        what = "statement" if row.kind == "statement" else "letter"
        click.echo(fmt.printable(f"{row.customer_code}: {what} level {row.level} for "
                                 f"{row.invoice_numbers} by {' > '.join(row.channels)}"))
    again = f"; {len(waiting)} waiting for a retry would be sent again" if waiting else ""
    click.echo(f"dry run: {len(rows)} reminders would be sent{again}; {already} already sent "
               "or queued; nothing written")


@click.command("send")
@click.option("--customer", default=None, help="Only this customer.")
@click.option("--invoice", "number", default=None, help="Only this invoice.")
@click.option("--statement", is_flag=True,
              help="One statement per customer instead of one letter per invoice.")
@click.option("--channel", default=None, help="Use this channel instead of the level's.")
@as_of_option
@click.option("--dry-run", is_flag=True, help="Show what would be sent; send nothing.")
@click.option("--force", is_flag=True,
              help="Send again what was already sent at the invoice's current level, and "
                   "do not wait for customers.min_contact_days.")
@click.option("--retry-for", "retry_for", type=click.FloatRange(min=0), default=RETRY_FOR,
              show_default=True, metavar="SECONDS",
              help="Keep retrying what a transient failure left pending for this long; "
                   "0: one attempt each.")
@rendering_command()
async def send_command(app: App, customer: str | None, number: str | None, statement: bool,
                       channel: str | None, as_of: dt.date | None, dry_run: bool,
                       force: bool, retry_for: float, renderer: Renderer) -> None:
    """Send the reminders due at the invoices' current levels.

    One letter per invoice, or one statement per customer with --statement;
    for everyone, one customer or one invoice.  "Relancé le" is stamped
    only on what a channel accepted, with today's date; with --as-of the
    run is a replay of that day: letters are dated and stamped with it.
    What waits for a retry in the selection is sent again too, and a
    transient failure is retried, on the daemon's backoff, for --retry-for
    seconds.  A letter a printer or fax server has queued is stamped once it
    confirms the job went: send does not wait for that; the daemon, or the
    next send, asks.
    """
    from relances.daemon.dispatch import outbox
    from relances.daemon.dispatch.run import Dispatcher, record_run
    from relances.daemon.ledger import book
    from relances.daemon.models import utcnow

    async with app.sessions() as session:
        await warn_unknown_kinds(session)
        if customer:
            await book.customer_by_code(session, customer)
        if number:
            invoice = await book.invoice_by_number(session, number)
            if invoice.level == 0:
                raise LedgerError(f"invoice {number} is at level 0: nothing to send yet "
                                  "(run `relances escalate` first)")
    if channel and channel not in app.settings.channels:
        raise LedgerError(f"channel {channel!r} is not configured in {app.settings.source}")
    request = outbox.Request(as_of=as_of, customer=customer, invoice=number, statement=statement,
                             channel=channel, force=force)
    if dry_run:
        await _preview(app, request)
        return
    dispatcher = Dispatcher(app, app.plugins, renderer, ask_every_awaiting=True)
    # What printers and fax servers did with earlier letters first: a job that
    # failed, or was never confirmed, goes on to the level's next channel now.
    await dispatcher.confirm()
    async with app.sessions.begin() as session:
        queued = await outbox.queue(session, app.settings, request, user=app.user)
        waiting = await outbox.waiting_for(session, request)
    ids = sorted(set(queued.ids) | set(waiting))
    if not ids:
        for reason in dispatcher.summary.reasons:
            click.echo(f"  {reason}", err=True)
        if dispatcher.summary.handled:
            click.echo(str(dispatcher.summary))
        hint = " (use --force to send again)" if queued.already else ""
        click.echo(f"nothing to send: {queued.already} already sent or queued{hint}")
        if dispatcher.summary.failed:
            sys.exit(1)
        return
    started = utcnow()
    deadline = started + dt.timedelta(seconds=retry_for)
    if len(ids) >= PROGRESS_FROM and sys.stderr.isatty():
        with click.progressbar(length=len(ids), label="sending", file=sys.stderr) as bar:
            dispatcher.progress = bar.update
            summary = await dispatcher.run_until(ids, deadline, _waiting(app))
    else:
        summary = await dispatcher.run_until(ids, deadline, _waiting(app))
    await record_run(app, "send", started, len(queued.ids), summary)
    for reason in summary.reasons:
        click.echo(f"  {reason}", err=True)
    already = queued.already - len(set(waiting) - set(queued.ids))
    skipped = f"; {already} skipped (already sent or queued)" if already > 0 else ""
    click.echo(f"{summary}{skipped}")
    if summary.failed:
        sys.exit(1)


@click.command("reprint")
@click.argument("number")
@click.option("--channel", default=None,
              help="Send through this channel [default: the one it left by].")
@async_command
async def reprint_command(app: App, number: str, channel: str | None) -> None:
    """Send again the exact document that last left for invoice NUMBER.

    Recorded in the history; changes neither the level nor "Relancé le".
    """
    from relances.daemon.dispatch.reprint import reprint
    from relances.daemon.ledger import book

    async with app.sessions() as session:
        await book.invoice_by_number(session, number)
    receipt = await reprint(app, number, channel=channel)
    click.echo(f"{number}: reprinted by {receipt.channel} ({receipt.reference})")


@click.command("mail")
@async_command
async def mail_command(app: App) -> None:
    """Read the mailboxes (settings' mailboxes:) for bounces and replies.

    A permanent bounce of every address of a customer undoes the email: its
    "Relancé le" goes back, the address is marked as bounced, and the level's
    next channel sends the reminder (at the next send, or by the daemon,
    which also reads the mailboxes before each of its sending runs).
    """
    from relances.daemon.dispatch.mailroom import read_mailboxes

    if not app.settings.mailboxes:
        raise click.UsageError(f"no mailboxes in {app.settings.source}: nothing to read")
    found = await read_mailboxes(app)
    for error in found.errors:
        click.echo(f"  {error}", err=True)
    click.echo(str(found))
    if found.errors:
        sys.exit(1)


COMMANDS = [send_command, reprint_command, mail_command]
