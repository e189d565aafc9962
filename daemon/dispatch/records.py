"""What the outcome of a delivery attempt writes: outbox row, stamp, history, proof.

Each function runs in the caller's transaction, which the dispatcher opens
for that one outcome.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from relances.daemon.config import DaemonSettings
from relances.daemon.dispatch.outbox import CANCELLED, FAILED, PENDING, SENT, retry_delay
from relances.daemon.ledger.book import add_history
from relances.daemon.models import Document, Invoice, Reminder, utcnow
from relances.daemon.storage import upsert
from relances.plugins.contract import Delivery, Receipt

log = logging.getLogger(__name__)


def reminder_word(kind: str) -> str:
    return "Relevé" if kind == "statement" else "Relance"


def action(kind: str, level: int, label: str) -> str:
    """The seed's history line: ``Relance niveau 2 (Courrier)``."""
    return f"{reminder_word(kind)} niveau {level} ({label})"


async def _reminder(session: AsyncSession, reminder_id: int) -> Reminder:
    reminder = await session.get(Reminder, reminder_id, with_for_update=True)
    assert reminder is not None
    return reminder


async def covered_invoices(session: AsyncSession, reminder: Reminder) -> list[Invoice]:
    if reminder.kind == "letter":
        invoice = await session.get(Invoice, reminder.invoice_id)
        return [invoice] if invoice is not None else []
    numbers = [n for n in reminder.invoice_numbers.split(",") if n]
    result = await session.execute(select(Invoice).where(Invoice.number.in_(numbers)))
    return list(result.scalars())


async def keep_document(session: AsyncSession, pdf: bytes, sha256: str) -> int:
    """Store a PDF once (by its hash) and return its id."""
    await session.execute(upsert(session, Document).values(sha256=sha256, content=pdf, size=len(pdf),
                                        created_at=utcnow())
                          .on_conflict_do_nothing(index_elements=["sha256"]))
    document_id = await session.scalar(select(Document.id).where(Document.sha256 == sha256))
    assert document_id is not None
    return document_id


async def sent(session: AsyncSession, reminder_id: int, delivery: Delivery, *, channel: str,
               label: str, receipt: Receipt, stamp: dt.date, user: str) -> None:
    """The channel accepted it: keep the PDF, stamp "Relancé le", write history."""
    reminder = await _reminder(session, reminder_id)
    reminder.state = SENT
    reminder.sent_at = utcnow()
    reminder.sent_channel = channel
    reminder.reference = receipt.reference
    reminder.lease_until = None
    reminder.last_error = None
    reminder.document_id = await keep_document(session, delivery.pdf, delivery.sha256)
    invoices = await covered_invoices(session, reminder)
    for invoice in invoices:
        # A statement covers invoices at several levels: each is reminded at its own.
        level = reminder.level if reminder.kind == "letter" else invoice.level
        invoice.last_reminded_on = stamp
        invoice.last_reminded_level = max(level, invoice.last_reminded_level or 0)
        invoice.reminded_here = True  # an export's level and date no longer apply
        add_history(session, user=user, event="sent", invoice_id=invoice.id,
                    customer_id=invoice.customer_id, level=reminder.level, channel=channel,
                    reference=receipt.reference, action=action(reminder.kind, reminder.level, label))


async def fallback(session: AsyncSession, reminder_id: int, channel: tuple[str, str],
                   reason: str, *, next_index: int, user: str) -> None:
    """A channel refused for good: note it and move on to the level's next channel."""
    reminder = await _reminder(session, reminder_id)
    reminder.channel_index = next_index
    reminder.last_error = f"{channel[0]}: {reason}"
    nxt = reminder.channels.split(",")[next_index]
    await _history(session, reminder, user=user, event="failed", channel=channel[0],
                   text=f"Échec {action(reminder.kind, reminder.level, channel[1])} : {reason} "
                        f"— envoi par {nxt}")


async def failed(session: AsyncSession, reminder_id: int, daemon: DaemonSettings, *,
                 channel: tuple[str, str] | None, reason: str, retryable: bool, user: str) -> str:
    """An attempt failed: schedule a retry, or give up; returns the new state."""
    reminder = await _reminder(session, reminder_id)
    name, label = channel or (None, reminder.channels.replace(",", ", "))
    reminder.last_error = f"{name}: {reason}" if name else reason
    reminder.lease_until = None
    what = action(reminder.kind, reminder.level, label)
    if retryable and reminder.attempts < daemon.max_attempts:
        delay = retry_delay(daemon, reminder.attempts)
        reminder.state = PENDING
        reminder.next_attempt_at = utcnow() + dt.timedelta(seconds=delay)
        text = f"Échec {what} : {reason} — nouvel essai dans {_duration(delay)}"
    else:
        reminder.state = FAILED
        tries = f" après {reminder.attempts} essais" if retryable else ""
        text = f"Échec {what} : {reason} — abandonnée{tries}"
    await _history(session, reminder, user=user, event="failed", channel=name, text=text)
    return reminder.state


async def cancelled(session: AsyncSession, reminder_id: int, reason: str, *, user: str) -> None:
    """No longer to be sent (paid, disputed, opted out since it was queued)."""
    reminder = await _reminder(session, reminder_id)
    reminder.state = CANCELLED
    reminder.lease_until = None
    reminder.last_error = reason
    await _history(session, reminder, user=user, event="cancelled", channel=None,
                   text=f"{reminder_word(reminder.kind)} niveau {reminder.level} annulée : {reason}")


async def _history(session: AsyncSession, reminder: Reminder, *, user: str, event: str,
                   channel: str | None, text: str) -> None:
    invoices = await covered_invoices(session, reminder)
    for invoice in invoices:
        add_history(session, user=user, event=event, invoice_id=invoice.id,
                    customer_id=invoice.customer_id, level=reminder.level, channel=channel,
                    action=text)
    if not invoices:
        add_history(session, user=user, event=event, customer_id=reminder.customer_id,
                    level=reminder.level, channel=channel, action=text)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


async def release(session: AsyncSession, reminder_ids: set[int], worker: str) -> int:
    """Hand back reminders a stopping worker claimed but never started."""
    if not reminder_ids:
        return 0
    result = await session.execute(
        update(Reminder).where(Reminder.id.in_(sorted(reminder_ids)), Reminder.state == "sending",
                               Reminder.claimed_by == worker)
        .values(state=PENDING, lease_until=None, claimed_by=None,
                attempts=Reminder.attempts - 1)
        .execution_options(synchronize_session=False))
    return int(result.rowcount)  # type: ignore[attr-defined]
