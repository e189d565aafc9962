"""Reading the ledger: the reminders table, a customer's card, an invoice, its history."""

from __future__ import annotations

import datetime as dt
import io
import json
from decimal import Decimal

import click
from sqlalchemy.ext.asyncio import AsyncSession

from relances.daemon import formatting as fmt
from relances.daemon.cli.main import async_command, warn_unknown_kinds
from relances.daemon.cli.options import as_of_option
from relances.daemon.ledger import book
from relances.daemon.ledger.kinds import KIND_LABELS
from relances.daemon.ledger.listing import ReminderRow, reminders_table, write_rows_csv
from relances.daemon.storage import App

HEADERS = ("Code", "Affilié", "Nom", "email", "Date Fac.", "N° Fac.", "Affect.", "Repr.",
           "Total Fac.", "Reste", "Échéance", "Relancé le", "N", "Retard", "Litige", "À envoyer")
RIGHT = frozenset({8, 9, 12, 13})


def table_cells(row: ReminderRow) -> list[str]:
    return [
        row.customer_code, row.affiliate_code or "", row.customer_name, row.email or "",
        fmt.date(row.invoice_date), row.invoice_number, row.assignment or "",
        row.representative or "", fmt.amount(row.total), fmt.amount(row.remaining),
        fmt.date(row.due_date), fmt.date(row.last_reminded_on), str(row.level) if row.level else "",
        f"{row.days_overdue} j", "oui" if row.on_hold else "",
        {"auto": "auto", "manual": "à valider"}.get(row.to_send or "", ""),
    ]


def render_rows(rows: list[ReminderRow], output: str) -> str:
    if output == "json":
        return json.dumps([r.as_json() for r in rows], ensure_ascii=False, indent=2)
    if output in ("csv", "csv-en"):
        buffer = io.StringIO()
        write_rows_csv(buffer, rows, french=output == "csv")
        return buffer.getvalue()
    if not rows:
        return "no overdue invoice"
    total = sum((r.remaining for r in rows), Decimal(0))
    body = fmt.table(HEADERS, [table_cells(r) for r in rows], RIGHT)
    return f"{body}\n\n{len(rows)} invoices overdue, {fmt.amount(total)} € due"


@click.command("list")
@click.option("--customer", default=None, help="Only this customer's invoices.")
@click.option("--level", type=click.IntRange(0, 3), default=None, help="Only invoices at this level.")
@as_of_option
@click.option("--format", "output", type=click.Choice(["table", "csv", "csv-en", "json"]),
              default="table", show_default=True,
              help="csv: for a French spreadsheet (;, BOM, 1253,06, JJ/MM/AAAA); csv-en: "
                   "RFC 4180 for programs (commas, 1253.06, ISO dates).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most this many rows.")
@click.option("--offset", type=click.IntRange(min=0), default=0, help="Skip this many rows.")
@async_command
async def list_command(app: App, customer: str | None, level: int | None, as_of: dt.date | None,
                       output: str, limit: int | None, offset: int) -> None:
    """The reminders table: unpaid invoices whose due date has passed."""
    async with app.sessions() as session:
        if customer is not None:
            await book.customer_by_code(session, customer)
        rows = await reminders_table(session, app.settings, as_of=as_of or app.settings.today(),
                                     customer=customer, level=level, limit=limit, offset=offset)
        await warn_unknown_kinds(session)
    click.echo(render_rows(rows, output), nl=not output.startswith("csv"))  # CSV ends its lines


async def history_lines(app: App, session: AsyncSession, invoice_id: int) -> list[list[str]]:
    lines = []
    for step in await book.invoice_history(session, invoice_id):
        day, time = fmt.local_time(step.at, app.settings.zone)
        lines.append([day, time, step.action, step.user, step.reference or ""])
    return lines


@click.command("history")
@click.argument("number")
@async_command
async def history_command(app: App, number: str) -> None:
    """The history of reminders of invoice NUMBER, newest first."""
    async with app.sessions() as session:
        invoice = await book.invoice_by_number(session, number)
        lines = await history_lines(app, session, invoice.id)
    click.echo(f"Historique des relances — {fmt.printable(number)}")
    if not lines:
        click.echo("(aucune étape)")
        return
    click.echo(fmt.table(("Date", "Heure", "Action", "Utilisateur", "Référence"), lines))


@click.command("invoice")
@click.argument("number")
@as_of_option
@async_command
async def invoice_command(app: App, number: str, as_of: dt.date | None) -> None:
    """The detail of invoice NUMBER and its history."""
    today = as_of or app.settings.today()
    async with app.sessions() as session:
        invoice = await book.invoice_by_number(session, number)
        customer = await book.customer_of(session, invoice)
        lines = await history_lines(app, session, invoice.id)
    overdue = (today - invoice.due_date).days
    hold = ""
    if invoice.on_hold:
        until = f" jusqu'au {fmt.date(invoice.hold_until)}" if invoice.hold_until else ""
        hold = f"en litige{until} : {invoice.hold_reason}"
    fields = [
        ("Facture", invoice.number), ("Libellé", invoice.label or ""),
        ("Client", f"{customer.code} — {customer.name}"),
        ("Date Fac.", fmt.date(invoice.invoice_date)), ("Échéance", fmt.date(invoice.due_date)),
        ("Retard", f"{overdue} j" if overdue > 0 and invoice.remaining > 0 else "—"),
        ("Total Fac.", f"{fmt.amount(invoice.total)} €"),
        ("Reste", f"{fmt.amount(invoice.remaining)} €" if invoice.remaining else "réglée"),
        ("Règlement", invoice.payment_method or ""), ("Affect.", invoice.assignment or ""),
        ("Repr.", invoice.representative or ""), ("Niveau", str(invoice.level)),
        ("Relancé le", fmt.date(invoice.last_reminded_on)), ("Litige", hold),
        ("PDF", invoice.pdf_path or ""),
    ]
    for label, value in fields:
        if value:
            click.echo(f"{label:<11} {fmt.printable(value)}")
    click.echo("\nHistorique des relances")
    click.echo(fmt.table(("Date", "Heure", "Action", "Utilisateur", "Référence"), lines)
               if lines else "(aucune étape)")


@click.command("customer")
@click.argument("code")
@click.option("--kind", type=click.Choice(["business", "public", "consumer"]), default=None,
              help="Say what the customer is (penalties and the indemnity are for "
                   "businesses and public buyers only); written in the history.")
@click.option("--forget", is_flag=True,
              help="Erase the customer's personal data, once nothing is owed and the "
                   "letters and invoices are past their retention (customers.keep_years).")
@click.option("--yes", is_flag=True, help="With --forget: do not ask for confirmation.")
@click.option("--resume", is_flag=True,
              help="End the pause of reminders that the customer's reply started.")
@as_of_option
@async_command
async def customer_command(app: App, code: str, kind: str | None, forget: bool, yes: bool,
                           resume: bool, as_of: dt.date | None) -> None:
    """A customer's card: contact details, unpaid invoices, total due, notes."""
    today = as_of or app.settings.today()
    if forget:
        await _forget(app, code, today, yes=yes)
        return
    if resume:
        async with app.sessions.begin() as session:
            customer = await book.customer_by_code(session, code)
            resumed = await book.resume(session, customer, user=app.user, as_of=today)
        click.echo(f"{code}: reminders resumed" if resumed else f"{code}: no pause to end")
    if kind is not None:
        async with app.sessions.begin() as session:
            customer = await book.customer_by_code(session, code)
            previous = await book.set_kind(session, customer, kind, user=app.user)
        click.echo(f"{code}: {KIND_LABELS[previous]} → {KIND_LABELS[kind]}" if previous != kind
                   else f"{code}: already {KIND_LABELS[kind]}")
    async with app.sessions() as session:
        customer = await book.customer_by_code(session, code)
        rows = await reminders_table(session, app.settings, as_of=today, customer=code)
        due = await book.amount_due(session, customer)
        notes = await book.notes_of(session, customer)
        steps = await book.customer_history(session, customer)
    click.echo(fmt.printable(f"{customer.code} — {customer.name} ({KIND_LABELS[customer.kind]}, "
                             f"{customer.language})"))
    for label, value in (("Affilié", customer.affiliate_code), ("Adresse", ", ".join(customer.address)),
                         ("SIREN", customer.siren), ("TVA", customer.vat_number),
                         ("Email", customer.email), ("Téléphone", customer.phone),
                         ("Fax", customer.fax), ("Politique", customer.policy),
                         ("Relances", "refusées (opt-out)" if customer.opted_out else
                          f"suspendues jusqu'au {customer.paused_until:%d/%m/%Y} (réponse du "
                          "client)" if customer.paused_until and customer.paused_until >= today
                          else None),
                         ("Promesse", f"règlement promis pour le {fmt.date(customer.promised_on)}, "
                          f"relances suspendues jusqu'au {fmt.date(customer.promise_until)}"
                          if customer.promise_until and customer.promise_until >= today
                          else None)):
        if value:
            click.echo(f"{label:<10} {fmt.printable(value)}")
    click.echo(f"\nTotal dû : {fmt.amount(due)} € "
               f"(dont {fmt.amount(sum((r.remaining for r in rows), Decimal(0)))} € échus)")
    if customer.credit:
        click.echo(f"Crédit du client (trop-perçu) : {fmt.amount(customer.credit)} €")
    if rows:
        click.echo(fmt.table(HEADERS[4:], [table_cells(r)[4:] for r in rows],
                             frozenset(i - 4 for i in RIGHT)))
    if steps:
        click.echo("\nHistorique du client")
        for step in steps:
            day, time = fmt.local_time(step.at, app.settings.zone)
            click.echo(f"{day} {time}  {fmt.printable(f'{step.action}  {step.user}')}")
    click.echo("\nNotes")
    if not notes:
        click.echo("(aucune)")
    for note in notes:
        day, time = fmt.local_time(note.at, app.settings.zone)
        click.echo(f"{day} {time}  {fmt.printable(f'{note.user}  [{note.kind}] {note.text}')}")


async def _forget(app: App, code: str, today: dt.date, *, yes: bool) -> None:
    from relances.daemon.service import forget as forgetting
    from relances.plugins.manager import get_plugin_manager

    async with app.sessions() as session:
        customer = await book.customer_by_code(session, code)
        reasons = await forgetting.obstacles(session, app.settings, customer, today)
    if reasons:
        raise forgetting.NotYet(customer.code, reasons)
    if not yes:
        click.confirm(fmt.printable(f"Erase the personal data of {customer.code} — "
                                    f"{customer.name} for good?"), abort=True)
    async with app.sessions.begin() as session:
        customer = await book.customer_by_code(session, code)
        done, receipts = await forgetting.forget(session, app.settings, customer, user=app.user,
                                                 today=today)
    click.echo(f"{code}: personal data erased ({done or 'nothing else held'}); "
               f"the customer is now {done.code}")
    left = await forgetting.forget_copies(app.settings, get_plugin_manager(), receipts)
    if left:
        click.echo("Copies outside Relances, to erase by hand:")
        for line in left:
            click.echo(f"  {fmt.printable(line)}")


COMMANDS = [list_command, customer_command, invoice_command, history_command]
