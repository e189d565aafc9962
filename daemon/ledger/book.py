"""The book: customers and invoices, payments, holds, levels set by hand,
notes, and the history every step writes.

Each function works in the caller's transaction.  A payment lowers what
remains due and writes its history line; a hold keeps an invoice out of
reminders until released or ended; the history of an invoice gathers its
reminders, escalations, payments and holds, newest first.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from relances.daemon.config import Settings
from relances.daemon.errors import LedgerError
from relances.daemon.ledger.due import open_invoices
from relances.daemon.ledger.kinds import KIND_LABELS
from relances.daemon.models import (
    CUSTOMER_KINDS,
    Customer,
    HistoryEntry,
    Invoice,
    Note,
    Payment,
    RunRecord,
    utcnow,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Step:
    """One line of an invoice's history, whatever table it comes from."""

    at: dt.datetime
    user: str
    action: str
    event: str
    level: int | None = None
    channel: str | None = None
    reference: str | None = None


def add_history(
    session: AsyncSession, *, user: str, event: str, action: str,
    invoice_id: int | None = None, customer_id: int | None = None,
    level: int | None = None, channel: str | None = None, reference: str | None = None,
    at: dt.datetime | None = None,
) -> None:
    """Record one step ("Relance niveau 2 (Courrier)") against an invoice or a customer."""
    session.add(HistoryEntry(
        at=at or utcnow(), user=user, event=event, action=action, invoice_id=invoice_id,
        customer_id=customer_id, level=level, channel=channel, reference=reference,
    ))


def invoice_file_name(number: str) -> str:
    """An invoice number as a file name: no separators, nothing hidden."""
    return number.replace("/", "_").replace("\\", "_").lstrip(".") or "_"


def invoice_copy_path(settings: Settings, invoice: Invoice) -> Path:
    """Where the invoice's own PDF is: its stored path, else the settings' pattern
    in the invoices folder (an invoice number is not a path)."""
    if invoice.pdf_path:
        return settings.path(invoice.pdf_path)
    return settings.path(settings.letters.invoice_pdf_pattern.format(
        number=invoice_file_name(invoice.number)))


def invoices_folder(settings: Settings) -> Path:
    """The folder invoice copies are read from: ``letters.invoice_pdf_pattern``'s,
    up to its first placeholder."""
    fixed = []
    for part in Path(settings.letters.invoice_pdf_pattern).parts[:-1]:
        if "{" in part:
            break
        fixed.append(part)
    return settings.path(Path(*fixed))


class InvoiceCopies:
    """Where an invoice copy may be read: inside the invoices folder, links resolved.

    A path an import gives (the export's PDF column) or a link in the folder
    would otherwise join any file the service can read to an outgoing letter.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.folder = invoices_folder(settings)
        self._root = self.folder.resolve()
        self._folders: dict[Path, bool] = {}  # an import's rows share a few folders

    def refusal(self, value: str | Path) -> str | None:
        """Why the copy at ``value`` may not be read, or None when it may."""
        path = self.settings.path(value)
        if path.name in ("", ".", "..") or path.is_symlink():
            inside = path.resolve().is_relative_to(self._root)
        else:
            inside = self._folders.get(path.parent)
            if inside is None:
                inside = path.parent.resolve().is_relative_to(self._root)
                self._folders[path.parent] = inside
        if inside:
            return None
        return (f"{value} is not in the invoices folder {self.folder} "
                "(letters.invoice_pdf_pattern): invoice copies are read from there only")


async def _one_named(session: AsyncSession, model: Any, column: Any, given: str) -> Any:
    """The row whose ``column`` is ``given`` (spaces around it aside), else the only one
    it names ignoring case; None when there is none, or several differ by case only."""
    wanted = given.strip()
    found = await session.scalar(select(model).where(column == wanted))
    if found is not None or not wanted:
        return found
    alike = (await session.execute(select(model).where(func.upper(column) == wanted.upper())
                                   .limit(2))).scalars().all()
    return alike[0] if len(alike) == 1 else None


async def invoice_by_number(session: AsyncSession, number: str) -> Invoice:
    """The invoice of that number, ignoring case and the spaces around it
    (``cod_f1026 `` finds COD_F1026)."""
    invoice: Invoice | None = await _one_named(session, Invoice, Invoice.number, number)
    if invoice is None:
        raise LedgerError(f"no invoice numbered {number!r}")
    return invoice


async def customer_by_code(session: AsyncSession, code: str) -> Customer:
    """The customer of that code, ignoring case and the spaces around it."""
    customer: Customer | None = await _one_named(session, Customer, Customer.code, code)
    if customer is None:
        raise LedgerError(f"no customer with code {code!r}")
    return customer


async def customer_of(session: AsyncSession, invoice: Invoice) -> Customer:
    customer = await session.get(Customer, invoice.customer_id)
    if customer is None:  # the foreign key forbids it
        raise LedgerError(f"invoice {invoice.number}: its customer is missing")
    return customer


async def amount_due(session: AsyncSession, customer: Customer) -> Decimal:
    """What the customer owes on all open invoices, due or not yet due."""
    due = await session.scalar(select(func.sum(Invoice.remaining)).where(
        Invoice.customer_id == customer.id, open_invoices()))
    return due or Decimal(0)


async def notes_of(session: AsyncSession, customer: Customer) -> Sequence[Note]:
    """The customer's calls and exchanges, newest first."""
    return (await session.execute(select(Note).where(Note.customer_id == customer.id)
                                  .order_by(Note.at.desc()))).scalars().all()


async def record_payment(
    session: AsyncSession, invoice: Invoice, *, amount: Decimal, paid_on: dt.date,
    user: str, method: str | None = None, reference: str = "",
    described: str | None = None, bank_entry_id: int | None = None, reflected: bool = False,
) -> bool:
    """Record a payment and lower what remains due.

    A payment with a reference (cheque number, transfer id) is recorded once:
    the same reference again returns False.  Without a reference every call
    records a payment; imports count identical rows instead (see
    :func:`import_payments`).  ``described``: how the history tells where it
    came from ("virement du 30/11/2026, réf. RF…"); ``bank_entry_id``: the
    bank entry that shows it; ``reflected``: the seller's books already hold
    it (no export can show it as news).
    """
    if amount <= 0:
        raise LedgerError(f"invoice {invoice.number}: a payment must be positive, not {amount}")
    if reference:
        dup = await session.scalar(select(Payment.id).where(
            Payment.invoice_id == invoice.id, Payment.reference == reference))
        if dup is not None:
            return False
    if amount > invoice.remaining:
        raise LedgerError(f"invoice {invoice.number}: payment of {amount} exceeds "
                          f"the {invoice.remaining} still due")
    session.add(Payment(invoice_id=invoice.id, paid_on=paid_on, amount=amount, method=method,
                        reference=reference, recorded_by=user, bank_entry_id=bank_entry_id,
                        reflected=reflected))
    invoice.remaining = invoice.remaining - amount
    add_history(session, user=user, event="paid", invoice_id=invoice.id,
                customer_id=invoice.customer_id,
                action=payment_action(amount, invoice.remaining, paid_on, described))
    await session.flush()
    return True


def payment_action(amount: Decimal, remaining: Decimal, paid_on: dt.date,
                   described: str | None = None) -> str:
    """The history line of a payment, given what remains after it."""
    state = "soldée" if remaining == 0 else f"reste {euros(remaining)}"
    action = (f"Règlement {euros(amount)} — {described} ({state})" if described
              else f"Règlement de {euros(amount)} reçu le {paid_on:%d/%m/%Y} ({state})")
    return action[:300]


def euros(value: Decimal) -> str:
    """``1 253,06 €``: an amount as French letters and history lines write it."""
    return f"{value:,.2f} €".replace(",", "\u202f").replace(".", ",")


async def set_hold(session: AsyncSession, invoice: Invoice, *, user: str, reason: str,
                   until: dt.date | None = None) -> None:
    """Put an invoice in dispute ("litige"): it is not reminded until released."""
    invoice.on_hold, invoice.hold_reason, invoice.hold_until = True, reason, until
    end = f" jusqu'au {until:%d/%m/%Y}" if until else ""
    add_history(session, user=user, event="hold", invoice_id=invoice.id,
                customer_id=invoice.customer_id, action=f"Mise en litige{end} : {reason}")


async def release_hold(session: AsyncSession, invoice: Invoice, *, user: str) -> None:
    invoice.on_hold, invoice.hold_reason, invoice.hold_until = False, None, None
    add_history(session, user=user, event="released", invoice_id=invoice.id,
                customer_id=invoice.customer_id, action="Fin de litige")


async def set_level(session: AsyncSession, invoice: Invoice, level: int, *, user: str) -> int:
    """Set an invoice's level by hand (the seed: "indiquer individuellement le niveau").

    Returns the previous level.  The reminder of the new level is then due;
    "Relancé le" is left as it is.
    """
    if level not in (0, 1, 2, 3):
        raise LedgerError(f"invoice {invoice.number}: a level is 0, 1, 2 or 3, not {level}")
    previous = invoice.level
    if previous != level:
        invoice.level = level
        add_history(session, user=user, event="level", invoice_id=invoice.id,
                    customer_id=invoice.customer_id, level=level,
                    action=f"Niveau modifié à la main : {previous} → {level}")
    return previous


async def set_kind(session: AsyncSession, customer: Customer, kind: str, *, user: str) -> str:
    """Say by hand what a customer is (business, public, consumer); returns the old kind."""
    if kind not in CUSTOMER_KINDS:
        raise LedgerError(f"customer {customer.code}: a kind is business, public, consumer "
                          f"or unknown, not {kind!r}")
    previous = customer.kind
    if previous != kind:
        customer.kind = kind
        add_history(session, user=user, event="kind", customer_id=customer.id,
                    action=f"Nature du client modifiée à la main : {KIND_LABELS[previous]} → "
                           f"{KIND_LABELS[kind]}")
    return previous


async def unknown_kind_customers(session: AsyncSession) -> Sequence[str]:
    """Codes of customers of unknown kind who owe something: their letters claim
    no penalties nor indemnity until somebody says what they are."""
    return (await session.execute(
        select(Customer.code).where(Customer.kind == "unknown", Customer.id.in_(
            select(Invoice.customer_id).where(open_invoices())))
        .order_by(Customer.code))).scalars().all()


async def held_for_review(session: AsyncSession, as_of: dt.date) -> Sequence[str]:
    """Codes of customers a bank payment waiting for review may belong to: no new
    reminder goes to them meanwhile."""
    return (await session.execute(
        select(Customer.code).where(Customer.review_until >= as_of)
        .order_by(Customer.code))).scalars().all()


async def paused_by_reply(session: AsyncSession, as_of: dt.date) -> Sequence[str]:
    """Codes of customers whose reply to a reminder pauses their reminders."""
    return (await session.execute(
        select(Customer.code).where(Customer.paused_until >= as_of)
        .order_by(Customer.code))).scalars().all()


async def resume(session: AsyncSession, customer: Customer, *, user: str,
                 as_of: dt.date) -> bool:
    """End the pause a reply started; False when there was none."""
    if customer.paused_until is None or customer.paused_until < as_of:
        return False
    customer.paused_until = None
    add_history(session, user=user, event="resumed", customer_id=customer.id,
                action="Relances reprises après la réponse du client")
    return True


async def kinds_unknown_since_upgrade(session: AsyncSession) -> Sequence[str]:
    """Codes of customers the schema upgrade made of unknown kind, still unknown."""
    return (await session.execute(
        select(Customer.code).where(Customer.kind == "unknown", Customer.id.in_(
            select(HistoryEntry.customer_id).where(HistoryEntry.event == "kind-unknown")))
        .order_by(Customer.code))).scalars().all()


async def add_note(session: AsyncSession, customer: Customer, *, user: str, text: str,
                   kind: str = "note", invoice: Invoice | None = None) -> Note:
    """Record a call or an exchange with a customer (the "centre d'actions")."""
    if not text.strip():
        raise LedgerError("a note needs some text")
    note = Note(customer_id=customer.id, invoice_id=invoice.id if invoice else None,
                user=user, kind=kind, text=text.strip())
    session.add(note)
    await session.flush()
    return note


def escalation_action(level: int) -> str:
    """The history line of an escalation step, in the seed's language."""
    return f"Passage au niveau {level} (incrémentation)"


def _step(entry: HistoryEntry) -> Step:
    return Step(entry.at, entry.user, entry.action, entry.event, entry.level, entry.channel,
                entry.reference)


def _level_runs(invoice: Any) -> list[tuple[int, int]]:
    """(level, run id) of the escalation runs that raised an invoice (or a row of its ids)."""
    return [(level, run_id) for level, run_id in ((1, invoice.level1_run_id),
                                                  (2, invoice.level2_run_id),
                                                  (3, invoice.level3_run_id)) if run_id is not None]


async def _escalations(session: AsyncSession, raised: Sequence[tuple[int, int, str | None]],
                       ) -> list[tuple[Step, str | None]]:
    """The escalation steps of (run id, level, invoice number): one run raises many
    invoices, each gets its step."""
    if not raised:
        return []
    found = await session.execute(
        select(RunRecord).where(RunRecord.id.in_({run_id for run_id, _, _ in raised})))
    runs = {run.id: run for run in found.scalars()}
    return [(Step(runs[run_id].started_at, runs[run_id].user, escalation_action(level),
                  "escalated", level), number)
            for run_id, level, number in raised if run_id in runs]


async def invoice_history(session: AsyncSession, invoice_id: int) -> list[Step]:
    """Every step of an invoice, newest first: reminders, escalations, payments, holds."""
    entries = await session.execute(
        select(HistoryEntry).where(HistoryEntry.invoice_id == invoice_id))
    steps = [_step(e) for e in entries.scalars()]
    invoice = await session.get(Invoice, invoice_id)
    raised = [] if invoice is None else [(run_id, level, None)
                                         for level, run_id in _level_runs(invoice)]
    steps += [step for step, _ in await _escalations(session, raised)]
    return sorted(steps, key=lambda step: _aware(step.at), reverse=True)


async def customer_history(session: AsyncSession, customer: Customer) -> list[Step]:
    """The steps recorded against the customer rather than one invoice, newest first."""
    entries = await session.execute(
        select(HistoryEntry).where(HistoryEntry.customer_id == customer.id,
                                   HistoryEntry.invoice_id.is_(None)))
    steps = [_step(e) for e in entries.scalars()]
    return sorted(steps, key=lambda step: _aware(step.at), reverse=True)


async def customer_timeline(session: AsyncSession, customer: Customer, *,
                            limit: int = 200) -> list[tuple[Step, str | None]]:
    """What happened with a customer, newest first, at most ``limit`` steps: its own
    (kind, credit) and its invoices' (reminders, escalations, payments, holds), each
    with its invoice's number (None for the customer's own)."""
    invoices = (await session.execute(
        select(Invoice.id, Invoice.number, Invoice.level1_run_id, Invoice.level2_run_id,
               Invoice.level3_run_id).where(Invoice.customer_id == customer.id))).all()
    numbers = {row.id: row.number for row in invoices}
    entries = await session.execute(
        select(HistoryEntry).where(or_(
            HistoryEntry.customer_id == customer.id,
            HistoryEntry.invoice_id.in_(select(Invoice.id).where(Invoice.customer_id == customer.id))))
        .order_by(HistoryEntry.at.desc(), HistoryEntry.id.desc()).limit(limit))
    found = [(_step(e), numbers.get(e.invoice_id)) for e in entries.scalars()]
    found += await _escalations(session, [(run_id, level, row.number) for row in invoices
                                          for level, run_id in _level_runs(row)])
    found.sort(key=lambda pair: _aware(pair[0].at), reverse=True)
    return found[:limit]


def _aware(at: dt.datetime) -> dt.datetime:
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)  # SQLite hands back naive UTC
