"""What the outcome of a delivery attempt writes: outbox row, stamp, history, proof.

Each function runs in the caller's transaction, which the dispatcher opens
for that one outcome, and writes only while the caller's lease holds: the
UPDATE that records the outcome names the holder and its lease in its
WHERE clause (:mod:`relances.daemon.dispatch.leases`).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from relances.daemon.config import DaemonSettings
from relances.daemon.dispatch.leases import Lease, held, stale
from relances.daemon.dispatch.outbox import (
    AWAITING,
    CANCELLED,
    FAILED,
    PENDING,
    SENT,
    retry_delay,
)
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
    reminder = await session.get(Reminder, reminder_id, populate_existing=True)
    assert reminder is not None
    return reminder


async def _write(session: AsyncSession, lease: Lease, outcome: str, reason: str = "",
                 **values: Any) -> bool:
    """Write ``values`` if the lease is still the recorder's; else log why not."""
    result = await session.execute(
        update(Reminder).where(held(lease)).values(**values).returning(Reminder.id)
        .execution_options(synchronize_session=False))
    if result.scalar_one_or_none() is None:
        await stale(session, lease, f"{outcome} not recorded", reason)
        return False
    return True


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


async def sent(session: AsyncSession, lease: Lease, delivery: Delivery, *, channel: str,
               label: str, receipt: Receipt, stamp: dt.date, user: str) -> bool:
    """The channel accepted it: keep the PDF, stamp "Relancé le", write history.

    False, and nothing written, when the lease is no longer the recorder's.
    """
    if not await _write(session, lease, "sent", receipt.reference, state=SENT,
                        sent_at=utcnow(), sent_channel=channel, reference=receipt.reference,
                        lease_until=None, last_error=None):
        return False
    await _keep_proof(session, lease, delivery)
    await _stamp(session, lease, channel=channel, label=label, reference=receipt.reference,
                 stamp=stamp, user=user)
    return True


async def handed_over(session: AsyncSession, lease: Lease, delivery: Delivery, *,
                      channel: str, label: str, receipt: Receipt, daemon: DaemonSettings,
                      user: str) -> bool:
    """The channel took it but has yet to confirm it went (a print or fax job):
    keep the PDF that left, stamp nothing, and wait for the channel without a
    lease.  False, and nothing written, when the lease is no longer the recorder's.
    """
    now = utcnow()
    if not await _write(session, lease, "hand-over", receipt.reference, state=AWAITING,
                        handed_over_at=now, sent_channel=channel, reference=receipt.reference,
                        next_attempt_at=now + dt.timedelta(seconds=daemon.confirm_every_seconds),
                        lease_until=None, last_error=None):
        return False
    await _keep_proof(session, lease, delivery)
    reminder = await _reminder(session, lease.reminder_id)
    await _history(session, reminder, user=user, event="handed-over", channel=channel,
                   text=f"{action(reminder.kind, reminder.level, label)} transmise, en attente "
                        "de confirmation", reference=receipt.reference)
    return True


async def confirmed(session: AsyncSession, lease: Lease, *, channel: str, label: str,
                    receipt: Receipt, stamp: dt.date, user: str) -> bool:
    """The channel confirmed what it took: stamp "Relancé le", write history.

    The PDF was kept when the channel took it.  False, and nothing written,
    when the reminder no longer waits for that job.
    """
    if not await _write(session, lease, "confirmation", receipt.reference, state=SENT,
                        sent_at=utcnow(), reference=receipt.reference, last_error=None):
        return False
    # What the other side said when it confirmed (the pages a fax sent) goes with the reference.
    detail = f" ({receipt.detail})" if receipt.detail else ""
    await _stamp(session, lease, channel=channel, label=label,
                 reference=f"{receipt.reference}{detail}"[:300], stamp=stamp, user=user)
    return True


async def _keep_proof(session: AsyncSession, lease: Lease, delivery: Delivery) -> None:
    document_id = await keep_document(session, delivery.pdf, delivery.sha256)
    await session.execute(update(Reminder).where(Reminder.id == lease.reminder_id)
                          .values(document_id=document_id)
                          .execution_options(synchronize_session=False))


async def _stamp(session: AsyncSession, lease: Lease, *, channel: str, label: str,
                 reference: str, stamp: dt.date, user: str) -> None:
    reminder = await _reminder(session, lease.reminder_id)
    invoices = await covered_invoices(session, reminder)
    undo = []
    for invoice in invoices:
        # A statement covers invoices at several levels: each is reminded at its own.
        level = reminder.level if reminder.kind == "letter" else invoice.level
        undo.append(stamp_undo(invoice, stamp, max(level, invoice.last_reminded_level or 0)))
        invoice.last_reminded_on = stamp
        invoice.last_reminded_level = max(level, invoice.last_reminded_level or 0)
        invoice.reminded_here = True  # an export's level and date no longer apply
        add_history(session, user=user, event="sent", invoice_id=invoice.id,
                    customer_id=invoice.customer_id, level=reminder.level, channel=channel,
                    reference=reference, action=action(reminder.kind, reminder.level, label))
    reminder.stamp_undo = ";".join(undo)  # what a bounce of this email puts back


def stamp_undo(invoice: Invoice, stamp: dt.date, level: int) -> str:
    """One invoice's part of ``Reminder.stamp_undo``: what the stamp replaces, and the
    stamp itself (a bounce puts the first back only while the second is still there)."""
    before = invoice.last_reminded_on.isoformat() if invoice.last_reminded_on else ""
    return (f"{invoice.id},{before},{invoice.last_reminded_level or ''},"
            f"{int(bool(invoice.reminded_here))},{stamp.isoformat()},{level}")


async def fallback(session: AsyncSession, lease: Lease, channel: tuple[str, str],
                   reason: str, *, next_index: int, user: str) -> bool:
    """A channel refused for good: note it and move on to the level's next channel.

    The lease stays: the reminder is still in flight, towards that channel.
    A reminder that waited for its channel's confirmation goes back to the
    queue, due now, for the next channel to take it.
    """
    values: dict[str, Any] = {"channel_index": next_index, "last_error": f"{channel[0]}: {reason}"}
    if lease.awaiting is not None:
        values.update(state=PENDING, next_attempt_at=utcnow(), handed_over_at=None)
    if not await _write(session, lease, "fallback", reason, **values):
        return False
    reminder = await _reminder(session, lease.reminder_id)
    nxt = reminder.channels.split(",")[next_index]
    await _history(session, reminder, user=user, event="failed", channel=channel[0],
                   text=f"Échec {action(reminder.kind, reminder.level, channel[1])} : {reason} "
                        f"— envoi par {nxt}")
    return True


async def failed(session: AsyncSession, lease: Lease, daemon: DaemonSettings, *,
                 channel: tuple[str, str] | None, reason: str, retryable: bool,
                 user: str) -> str | None:
    """An attempt failed: schedule a retry, or give up; returns the new state.

    None, and nothing written, when the lease is no longer the recorder's:
    a late failure never undoes what another worker recorded since.
    """
    reminder = await _reminder(session, lease.reminder_id)
    name, label = channel or (None, reminder.channels.replace(",", ", "))
    what = action(reminder.kind, reminder.level, label)
    values: dict[str, Any] = {"last_error": f"{name}: {reason}" if name else reason,
                              "lease_until": None}
    if retryable and reminder.attempts < daemon.max_attempts:
        delay = retry_delay(daemon, reminder.attempts)
        values.update(state=PENDING, next_attempt_at=utcnow() + dt.timedelta(seconds=delay))
        text = f"Échec {what} : {reason} — nouvel essai dans {_duration(delay)}"
    else:
        values.update(state=FAILED)
        tries = f" après {reminder.attempts} essais" if retryable else ""
        text = f"Échec {what} : {reason} — abandonnée{tries}"
    if not await _write(session, lease, "retry" if values["state"] == PENDING else "failure",
                        reason, **values):
        return None
    await _history(session, reminder, user=user, event="failed", channel=name, text=text)
    return str(values["state"])


async def cancelled(session: AsyncSession, lease: Lease, reason: str, *, user: str) -> bool:
    """No longer to be sent (paid, disputed, opted out since it was queued)."""
    if not await _write(session, lease, "cancellation", reason, state=CANCELLED,
                        lease_until=None, last_error=reason):
        return False
    reminder = await _reminder(session, lease.reminder_id)
    await _history(session, reminder, user=user, event="cancelled", channel=None,
                   text=f"{reminder_word(reminder.kind)} niveau {reminder.level} annulée : {reason}")
    return True


async def note(session: AsyncSession, reminder: Reminder, *, user: str, event: str,
               text: str) -> None:
    """A history line on what the reminder covers, changing nothing else (a bounce, a
    reply that came back)."""
    await _history(session, reminder, user=user, event=event, channel=None, text=text)


async def _history(session: AsyncSession, reminder: Reminder, *, user: str, event: str,
                   channel: str | None, text: str, reference: str | None = None) -> None:
    invoices = await covered_invoices(session, reminder)
    for invoice in invoices:
        add_history(session, user=user, event=event, invoice_id=invoice.id,
                    customer_id=invoice.customer_id, level=reminder.level, channel=channel,
                    action=text, reference=reference)
    if not invoices:
        add_history(session, user=user, event=event, customer_id=reminder.customer_id,
                    level=reminder.level, channel=channel, action=text, reference=reference)


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
