"""Changing the ledger by hand: payments, holds, notes, levels."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import click

from relances.daemon import formatting as fmt
from relances.daemon.cli.main import async_command
from relances.daemon.cli.options import AMOUNT, DATE
from relances.daemon.errors import LedgerError
from relances.daemon.ledger import book, promises
from relances.daemon.storage import App


@click.command("pay")
@click.argument("number")
@click.argument("amount", type=AMOUNT, required=False)
@click.option("--on", "paid_on", type=DATE, default=None, help="Payment date [default: today].")
@click.option("--method", default=None, help="Chèque, virement, ...")
@click.option("--reference", default="", help="Cheque number, transfer reference.")
@async_command
async def pay_command(app: App, number: str, amount: Decimal | None, paid_on: dt.date | None,
                      method: str | None, reference: str) -> None:
    """Record a payment on invoice NUMBER (the whole remaining amount by default)."""
    async with app.sessions.begin() as session:
        invoice = await book.invoice_by_number(session, number)
        paid = amount if amount is not None else invoice.remaining
        recorded = await book.record_payment(session, invoice, amount=paid,
                                               paid_on=paid_on or app.settings.today(),
                                               user=app.user, method=method, reference=reference)
        left = invoice.remaining
    if not recorded:
        raise LedgerError(f"{number}: a payment with reference {reference!r} is already recorded")
    state = "paid in full" if left == 0 else f"{left} still due"
    click.echo(f"{number}: payment of {paid} recorded, {state}")


@click.command("hold")
@click.argument("number")
@click.option("--reason", required=True, help="Why the invoice is disputed.")
@click.option("--until", type=DATE, default=None, help="End of the hold [default: until released].")
@async_command
async def hold_command(app: App, number: str, reason: str, until: dt.date | None) -> None:
    """Put invoice NUMBER in dispute: it is not reminded until released."""
    async with app.sessions.begin() as session:
        invoice = await book.invoice_by_number(session, number)
        await book.set_hold(session, invoice, user=app.user, reason=reason, until=until)
    click.echo(f"{number}: on hold ({reason})")


@click.command("release")
@click.argument("number")
@async_command
async def release_command(app: App, number: str) -> None:
    """End the dispute on invoice NUMBER."""
    async with app.sessions.begin() as session:
        invoice = await book.invoice_by_number(session, number)
        await book.release_hold(session, invoice, user=app.user)
    click.echo(f"{number}: released")


@click.command("note")
@click.argument("code")
@click.argument("text")
@click.option("--kind", type=click.Choice(["call", "email", "letter", "visit", "note"]),
              default="note", show_default=True)
@click.option("--invoice", "number", default=None, help="The invoice the exchange is about.")
@click.option("--promise", "promised_on", type=DATE, default=None, metavar="DATE",
              help="The customer promised to pay on DATE: no reminder until then and "
                   "customers.promise_grace_days.")
@async_command
async def note_command(app: App, code: str, text: str, kind: str, number: str | None,
                       promised_on: dt.date | None) -> None:
    """Record a call or an exchange with customer CODE (with --promise, a promise to pay)."""
    async with app.sessions.begin() as session:
        customer = await book.customer_by_code(session, code)
        if promised_on is not None:
            await promises.record_promise(
                session, customer, user=app.user, on=promised_on, text=text,
                grace_days=app.settings.customers.promise_grace_days,
                as_of=app.settings.today())
            until = customer.promise_until
            click.echo(f"{code}: promise to pay on {fmt.date(promised_on)} recorded; "
                       f"no reminder until {fmt.date(until)}")
            return
        invoice = await book.invoice_by_number(session, number) if number else None
        await book.add_note(session, customer, user=app.user, text=text, kind=kind,
                              invoice=invoice)
    click.echo(f"{code}: note recorded")


@click.command("set-level")
@click.argument("number")
@click.argument("level", type=click.IntRange(0, 3))
@async_command
async def set_level_command(app: App, number: str, level: int) -> None:
    """Set the reminder level of invoice NUMBER by hand (0 to 3)."""
    async with app.sessions.begin() as session:
        invoice = await book.invoice_by_number(session, number)
        previous = await book.set_level(session, invoice, level, user=app.user)
    if previous == level:
        click.echo(f"{number}: already at level {level}")
    else:
        click.echo(f"{number}: level {previous} → {level}")


COMMANDS = [pay_command, hold_command, release_command, note_command,
            set_level_command]
