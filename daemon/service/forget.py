"""Keeping and forgetting: erasing a customer's personal data once the law allows it.

Sent letters are proof and, with the invoices and payments, commercial
records: the Code de commerce (L123-22) has them kept ten years
(``customers.keep_years``), counted here from each record's own date (a
letter's sending, an invoice's date, a payment's day).  A customer may be
forgotten (``relances customer CODE --forget``) once nothing is owed either
way, nothing is on its way to them and every record is past that
retention; :func:`obstacles` lists what stands in the way.

:func:`forget` then, in one transaction, deletes the customer's invoices
and their payments and statuses, the reminders and the PDFs only they
used, the notes, the known IBANs, the messages read from the mailboxes and
the history; blanks what bank entries say of the payer (the entries stay,
so a statement read again applies nothing twice); replaces the name and
every contact detail and the code itself; and writes one history line that
says it happened, by whom and how much went, not what it was.  Each
channel is then asked to erase its own copies (:meth:`Channel.forget`).

Lives in the service stage because it crosses every stage below: the
ledger's tables, the bank's, the dispatch's outbox and channels.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, delete, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from relances.daemon.config import Settings
from relances.daemon.dispatch.channels import configured_channel
from relances.daemon.errors import LedgerError
from relances.daemon.ledger.book import add_history, euros
from relances.daemon.models import (
    BankEntry,
    Customer,
    CustomerIban,
    Document,
    HistoryEntry,
    InboundMessage,
    Invoice,
    InvoiceStatus,
    Note,
    Payment,
    Reminder,
)
from relances.plugins import Receipt

log = logging.getLogger(__name__)

IN_FLIGHT = ("pending", "sending", "awaiting")
FORGOTTEN_NAME = "(client effacé)"
SHOWN = 20  # obstacles listed one by one; the rest are counted


class NotYet(LedgerError):
    """The customer cannot be forgotten yet; ``reasons`` says why, one line each."""

    def __init__(self, code: str, reasons: list[str]) -> None:
        shown = reasons[:SHOWN] + ([f"… and {len(reasons) - SHOWN} more"]
                                   if len(reasons) > SHOWN else [])
        super().__init__(f"{code} cannot be forgotten yet:\n" + "\n".join(f"  {r}" for r in shown))
        self.reasons = reasons


@dataclass
class Forgotten:
    """What forgetting erased, and what the channels could not."""

    code: str  # the code the customer now has
    counts: dict[str, int] = field(default_factory=dict)
    left: list[str] = field(default_factory=list)  # copies outside Relances, one line each

    def __str__(self) -> str:
        return ", ".join(f"{n} {what}" for what, n in self.counts.items())

    def french(self) -> str:
        """The counts as the history shows them."""
        return ", ".join(f"{FRENCH[what]} : {n}" for what, n in self.counts.items())


FRENCH = {"messages": "emails reçus", "reminders": "relances", "payments": "paiements",
          "statuses": "statuts", "history lines": "lignes d'historique", "notes": "notes",
          "invoices": "factures", "IBANs": "IBAN", "documents": "documents",
          "bank entries blanked": "écritures bancaires anonymisées"}


def kept_until(day: dt.date, years: int) -> dt.date:
    """``day`` plus ``years`` (29 February becomes 28 February)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def _day(at: dt.datetime | dt.date) -> dt.date:
    return at.date() if isinstance(at, dt.datetime) else at


async def obstacles(session: AsyncSession, settings: Settings, customer: Customer,
                    today: dt.date) -> list[str]:
    """What keeps ``customer`` from being forgotten today, one line each; [] when nothing."""
    years = settings.customers.keep_years
    reasons: list[str] = []
    invoices = list((await session.execute(
        select(Invoice).where(Invoice.customer_id == customer.id).order_by(Invoice.number)))
        .scalars())
    reasons += [f"invoice {i.number}: {euros(i.remaining)} still owed" for i in invoices
                if i.remaining > 0]
    reasons += [f"invoice {i.number}: {euros(-i.remaining)} owed to the customer" for i in invoices
                if i.remaining < 0]
    if customer.credit:
        reasons.append(f"the customer's credit of {euros(customer.credit)} is not refunded")
    in_flight = (await session.execute(
        select(Reminder.id, Reminder.state).where(Reminder.customer_id == customer.id,
                                                  Reminder.state.in_(IN_FLIGHT)))).all()
    reasons += [f"reminder {rid} is {state}" for rid, state in in_flight]
    waiting = (await session.scalars(select(BankEntry.id).where(
        BankEntry.state == "review", or_(BankEntry.customer_id == customer.id,
                                         _names(BankEntry.candidates, customer.id))))).all()
    reasons += [f"bank entry {entry} waits in review (relances bank review)" for entry in waiting]
    records: list[tuple[dt.date, str]] = []
    sent = (await session.execute(
        select(Reminder.sent_at, Reminder.invoice_numbers, Invoice.number)
        .outerjoin(Invoice, Invoice.id == Reminder.invoice_id)
        .where(Reminder.customer_id == customer.id, Reminder.sent_at.is_not(None)))).all()
    records += [(_day(at), f"the reminder sent on {_day(at):%d/%m/%Y} for {number or numbers}")
                for at, numbers, number in sent]
    records += [(i.invoice_date, f"invoice {i.number} of {i.invoice_date:%d/%m/%Y}")
                for i in invoices]
    paid = (await session.execute(
        select(Payment.paid_on, Invoice.number).join(Invoice, Invoice.id == Payment.invoice_id)
        .where(Invoice.customer_id == customer.id))).all()
    records += [(day, f"the payment of {day:%d/%m/%Y} on {number}") for day, number in paid]
    for day, what in sorted(records, reverse=True):
        until = kept_until(day, years)
        if until > today:
            reasons.append(f"{what}: kept until {until:%d/%m/%Y} (customers.keep_years: {years})")
    return reasons


def _names(column: Any, customer_id: int) -> Any:
    """A comma-separated list of ids holds ``customer_id``."""
    return (literal(",") + column + literal(",")).contains(f",{customer_id},")


async def forget(session: AsyncSession, settings: Settings, customer: Customer, *, user: str,
                 today: dt.date) -> tuple[Forgotten, list[Receipt]]:
    """Erase ``customer`` in the caller's transaction; NotYet lists what stands in the way.

    Returns what was erased and the channels' receipts, whose copies
    :func:`forget_copies` erases once the transaction has committed."""
    reasons = await obstacles(session, settings, customer, today)
    if reasons:
        raise NotYet(customer.code, reasons)
    cid = customer.id
    invoice_ids = select(Invoice.id).where(Invoice.customer_id == cid)
    reminder_ids = select(Reminder.id).where(Reminder.customer_id == cid)
    receipts = await _receipts(session, cid, invoice_ids)
    documents = set((await session.scalars(
        select(Reminder.document_id).where(Reminder.customer_id == cid,
                                           Reminder.document_id.is_not(None)))).all())
    entries = select(Payment.bank_entry_id).where(Payment.invoice_id.in_(invoice_ids),
                                                  Payment.bank_entry_id.is_not(None))
    blanked = await _run(session, update(BankEntry).where(
        or_(BankEntry.customer_id == cid, BankEntry.id.in_(entries)))
        .values(counterparty="", counterparty_iban=None, reference=None, text="",
                note=None, customer_id=None))
    counts = {
        "messages": await _run(session, delete(InboundMessage).where(
            or_(InboundMessage.customer_id == cid, InboundMessage.reminder_id.in_(reminder_ids)))),
        "reminders": await _run(session, delete(Reminder).where(Reminder.customer_id == cid)),
        "payments": await _run(session, delete(Payment).where(Payment.invoice_id.in_(invoice_ids))),
        "statuses": await _run(session, delete(InvoiceStatus).where(
            InvoiceStatus.invoice_id.in_(invoice_ids))),
        "history lines": await _run(session, delete(HistoryEntry).where(
            or_(HistoryEntry.customer_id == cid, HistoryEntry.invoice_id.in_(invoice_ids)))),
        "notes": await _run(session, delete(Note).where(Note.customer_id == cid)),
        "invoices": await _run(session, delete(Invoice).where(Invoice.customer_id == cid)),
        "IBANs": await _run(session, delete(CustomerIban).where(CustomerIban.customer_id == cid)),
    }
    still_used = select(Reminder.document_id).where(Reminder.document_id.is_not(None))
    counts["documents"] = await _run(session, delete(Document).where(
        Document.id.in_(documents), Document.id.not_in(still_used))) if documents else 0
    counts["bank entries blanked"] = blanked
    code = f"EFFACE-{cid}"
    await session.execute(update(Customer).where(Customer.id == cid).values(
        code=code, name=FORGOTTEN_NAME, affiliate_code=None, email=None, email_bounce=None,
        email_bounced_at=None, fax=None, phone=None, address_line1=None, address_line2=None,
        postal_code=None, city=None, country=None, siren=None, vat_number=None, policy=None,
        review_until=None, paused_until=None).execution_options(synchronize_session=False))
    done = Forgotten(code, {what: n for what, n in counts.items() if n})
    add_history(session, user=user, event="forgotten", customer_id=cid,
                action=f"Données du client effacées ({done.french() or 'rien d’autre'}), "
                       f"conservation de {settings.customers.keep_years} ans écoulée")
    log.info("customer %s forgotten by %s: %s", code, user, done)
    return done, receipts


async def _run(session: AsyncSession, statement: Any) -> int:
    result = await session.execute(statement.execution_options(synchronize_session=False))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def _receipts(session: AsyncSession, cid: int, invoice_ids: Select[Any]) -> list[Receipt]:
    """Every copy a channel made for the customer: the reminders' and the reprints'."""
    rows = list((await session.execute(
        select(HistoryEntry.channel, HistoryEntry.reference).where(
            or_(HistoryEntry.customer_id == cid, HistoryEntry.invoice_id.in_(invoice_ids)),
            HistoryEntry.event.in_(("sent", "reprinted")), HistoryEntry.channel.is_not(None),
            HistoryEntry.reference.is_not(None)))).all())
    rows += (await session.execute(
        select(Reminder.sent_channel, Reminder.reference).where(
            Reminder.customer_id == cid, Reminder.sent_channel.is_not(None),
            Reminder.reference.is_not(None)))).all()
    return [Receipt(channel, reference) for channel, reference in dict.fromkeys(
        (str(c), str(r)) for c, r in rows)]


async def forget_copies(settings: Settings, pm: Any, receipts: list[Receipt]) -> list[str]:
    """Ask each channel to erase its copies; what stays, one line each."""
    left: list[str] = []
    channels: dict[str, Any] = {}
    for receipt in receipts:
        if receipt.channel not in settings.channels:
            left.append(f"{receipt.channel} {receipt.reference}: the channel is no longer "
                        "configured, its copy was not erased")
            continue
        if receipt.channel not in channels:
            channels[receipt.channel] = configured_channel(settings, pm, receipt.channel)
        try:
            said = await channels[receipt.channel].forget(receipt)
        except Exception as exc:  # noqa: BLE001 - a plugin's failure is one line, not a crash
            said = f"{receipt.channel} {receipt.reference}: the channel could not erase it ({exc})"
        if said:
            left.append(said)
    return list(dict.fromkeys(left))
