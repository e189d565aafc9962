"""``relances bank``: the review queue of bank payments nothing certain matched."""

from __future__ import annotations

from decimal import Decimal

import click

from relances.daemon import formatting as fmt
from relances.daemon.bank import review
from relances.daemon.cli.main import async_command
from relances.daemon.cli.options import AMOUNT
from relances.daemon.errors import BankError
from relances.daemon.storage import App


@click.group("bank")
def bank_group() -> None:
    """The bank payments waiting for a person: review, match, ignore."""


@bank_group.command("review")
@async_command
async def review_command(app: App) -> None:
    """What waits, oldest first, with who it may be and which invoices have that amount."""
    async with app.sessions() as session:
        items = await review.waiting(session)
    if not items:
        click.echo("nothing waits for review")
        return
    rows = []
    for item in items:
        entry = item.entry
        rows.append([str(entry.id), fmt.date(entry.booked_on), fmt.amount(entry.amount),
                     entry.counterparty, " ".join(entry.text.split())[:60],
                     ", ".join(item.customers), ", ".join(item.suggestions), entry.note or ""])
    click.echo(fmt.table(("Entrée", "Date", "Montant", "Payeur", "Libellé", "Client ?",
                          "Factures de ce montant", "Pourquoi"), rows, frozenset({0, 2})))
    click.echo(f"\n{len(items)} entries wait: `relances bank match ENTRY INVOICE [AMOUNT] …` "
               "or `relances bank ignore ENTRY --reason TEXT`")


def _pairs(items: tuple[str, ...]) -> list[tuple[str, Decimal | None]]:
    """``F1 100,00 F2`` → [(F1, 100.00), (F2, None)]: an amount follows its invoice."""
    pairs: list[tuple[str, Decimal | None]] = []
    for item in items:
        try:
            amount = AMOUNT.convert(item, None, None)
        except click.BadParameter:
            pairs.append((item, None))
            continue
        if not pairs or pairs[-1][1] is not None:
            raise BankError(f"{item}: an amount must follow an invoice number")
        pairs[-1] = (pairs[-1][0], amount)
    if not pairs:
        raise BankError("name at least one invoice")
    return pairs


@bank_group.command("match")
@click.argument("entry", type=int)
@click.argument("invoices", nargs=-1, required=True)
@async_command
async def match_command(app: App, entry: int, invoices: tuple[str, ...]) -> None:
    """Apply waiting entry ENTRY to INVOICES, each optionally followed by its amount.

    The payer's IBAN is remembered for the customer; what is paid beyond the
    invoices becomes a credit on the customer's account.
    """
    async with app.sessions.begin() as session:
        done = await review.match_by_hand(session, app.settings, entry, _pairs(invoices),
                                          user=app.user)
    for line in done:
        click.echo(line)


@bank_group.command("ignore")
@click.argument("entry", type=int)
@click.option("--reason", required=True, help="Why this is not a customer's payment.")
@async_command
async def ignore_command(app: App, entry: int, reason: str) -> None:
    """Set waiting entry ENTRY aside."""
    async with app.sessions.begin() as session:
        await review.ignore(session, entry, reason=reason, user=app.user)
    click.echo(f"entry {entry}: set aside ({reason})")


COMMANDS = [bank_group]
