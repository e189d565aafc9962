"""Reading the mailboxes and recording what came back (:mod:`.bounces`).

Each message is recorded in ``inbound_messages`` in the same transaction
as what it changes, under its ``source`` in its mailbox: a message read
again (a second daemon, a crash before the mailbox's next reading) changes
nothing.  A permanent bounce of an email reminder that left puts back the
invoices' stamp, marks the customer's address as bounced and sends the
reminder by the level's next channel (none left: it fails); a delayed
notice, an auto-reply or a reply is written in the invoices' history.  A
reply (to one of our emails, or any message from one of a customer's
addresses that is not an auto-reply) goes into the customer's notes with
its words and pauses their reminders for ``customers.reply_pause_days``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from dataclasses import dataclass, field, replace
from email.utils import parseaddr

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from relances.daemon.dispatch import records
from relances.daemon.dispatch.bounces import (
    Classified,
    Failure,
    addresses_of,
    all_refused,
    classify,
    described,
)
from relances.daemon.dispatch.mailboxes import Fetched, Mailbox, MailboxError, configured_mailboxes, fetch
from relances.daemon.dispatch.outbox import FAILED, PENDING, SENT
from relances.daemon.ledger.book import add_history, add_note
from relances.daemon.models import Customer, InboundMessage, Invoice, Reminder, utcnow
from relances.daemon.storage import App, upsert

log = logging.getLogger(__name__)

EMAIL_CHANNELS = ("email",)  # the channels whose receipts are Message-IDs that can bounce


@dataclass
class MailRead:
    """What one reading of the mailboxes found, for the logs and ``relances mail``."""

    kinds: Counter[str] = field(default_factory=Counter)
    undone: int = 0  # reminders whose email bounced for good, sent on or failed
    errors: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        found = ", ".join(f"{n} {kind}" for kind, n in sorted(self.kinds.items())) or "nothing new"
        undone = f"; {self.undone} bounced reminders undone" if self.undone else ""
        failed = f"; {len(self.errors)} mailboxes unreadable" if self.errors else ""
        return f"{found}{undone}{failed}"


async def read_mailboxes(app: App) -> MailRead:
    """Read every mailbox of ``settings.mailboxes`` once; a mailbox that cannot be
    read is logged and counted, and the others are read."""
    done = MailRead()
    for box in configured_mailboxes(app.settings):
        try:
            await _read(app, box, done)
        except MailboxError as exc:
            log.warning("%s", exc)
            done.errors.append(str(exc))
    return done


async def _read(app: App, box: Mailbox, done: MailRead) -> None:
    async with app.sessions() as session:
        last = dict((await session.execute(
            select(InboundMessage.uidvalidity, func.max(InboundMessage.uid))
            .where(InboundMessage.mailbox == box.name, InboundMessage.uid.is_not(None))
            .group_by(InboundMessage.uidvalidity))).all())
    async for fetched in fetch(box, after_uid={k: v for k, v in last.items() if k is not None}):
        found = classify(fetched.content)
        async with app.sessions.begin() as session:
            recorded = await _record(session, app, box, fetched, found)
            if recorded is not None:
                found = recorded
                done.kinds[found.kind] += 1
                if found.kind == "bounce" and await _bounced(session, app, found):
                    done.undone += 1


async def _reminder_of(session: AsyncSession, found: Classified) -> Reminder | None:
    if not found.refers_to:
        return None
    return (await session.execute(
        select(Reminder).where(Reminder.reference.in_(found.refers_to))
        .order_by(Reminder.id.desc()).limit(1))).scalar_one_or_none()


async def _record(session: AsyncSession, app: App, box: Mailbox, fetched: Fetched,
                  found: Classified) -> Classified | None:
    """Write the message down once, as what it turned out to be; None when it was
    already (read before)."""
    reminder = await _reminder_of(session, found)
    customer = (await session.get(Customer, reminder.customer_id) if reminder
                else await _customer_writing(session, found))
    if customer is not None and reminder is None and found.kind == "other":
        found = replace(found, kind="reply")  # from a customer's address: a reply too
    new_id = await session.scalar(
        upsert(session, InboundMessage).values(
            mailbox=box.name, source=fetched.source[:300], uidvalidity=fetched.uidvalidity,
            uid=fetched.uid, kind=found.kind, reminder_id=reminder.id if reminder else None,
            customer_id=customer.id if customer else None, received_at=utcnow(),
            summary=found.summary()[:2000],
            refused=",".join(sorted({f.address for f in found.failures if f.permanent}))[:4000])
        .on_conflict_do_nothing(index_elements=["mailbox", "source"])
        .returning(InboundMessage.id))
    if new_id is None:
        return None
    if customer is None or found.kind in ("bounce", "other"):
        return found
    subject = f" : {found.subject[:150]}" if found.subject else ""
    text = {"delayed": f"Email retardé : {described(found.failures)}",
            "auto-reply": f"Réponse automatique reçue{subject}",
            "reply": f"Réponse du client reçue{subject}"}[found.kind]
    if found.kind == "reply":
        text += await _pause(session, app, customer, found)
    if reminder is not None:
        await records.note(session, reminder, user=app.user, event=found.kind, text=text)
    else:
        add_history(session, user=app.user, event=found.kind, customer_id=customer.id,
                    action=text[:300])
    return found


async def _customer_writing(session: AsyncSession, found: Classified) -> Customer | None:
    """The customer one of whose addresses sent the message, if exactly one has it."""
    sender = parseaddr(found.sender)[1].strip().lower()
    if "@" not in sender or len(sender) > 254:
        return None
    candidates = (await session.execute(select(Customer).where(
        func.lower(Customer.email).contains(sender, autoescape=True)).limit(20))).scalars().all()
    matching = [c for c in candidates if sender in addresses_of(c.email)]
    return matching[0] if len(matching) == 1 else None


async def _pause(session: AsyncSession, app: App, customer: Customer, found: Classified) -> str:
    """Keep the reply's words in the customer's notes and pause their reminders for
    ``customers.reply_pause_days``; what the history line adds."""
    words = "\n".join(part for part in (found.subject, found.text) if part)
    await add_note(session, customer, user=app.user, kind="reply",
                   text=words or "(réponse sans texte)")
    days = app.settings.customers.reply_pause_days
    if not days:
        return ""
    until = app.settings.today() + dt.timedelta(days=days)
    if customer.paused_until is None or customer.paused_until < until:
        customer.paused_until = until
    return f" — relances suspendues jusqu'au {customer.paused_until:%d/%m/%Y}"


async def _bounced(session: AsyncSession, app: App, found: Classified) -> bool:
    """Undo the email a permanent bounce is about; False when there is nothing to undo."""
    reminder = await _reminder_of(session, found)
    if reminder is None or reminder.state != SENT or reminder.sent_channel not in EMAIL_CHANNELS:
        return False
    customer = await session.get(Customer, reminder.customer_id)
    assert customer is not None
    why = described(found.failures)
    earlier = (await session.scalars(select(InboundMessage.refused).where(
        InboundMessage.reminder_id == reminder.id, InboundMessage.kind == "bounce"))).all()
    refused = found.failures + tuple(Failure(address, "5.0.0") for line in earlier
                                     for address in line.split(",") if address)
    if not all_refused(refused, customer.email):
        # A copy (Bcc) or one address of several: the customer was reached.
        await records.note(session, reminder, user=app.user, event="bounce",
                           text=f"Email rejeté pour une copie ou une autre adresse : {why}")
        return False
    names = reminder.channels.split(",")
    last = reminder.channel_index >= len(names) - 1
    restored = await _restore_stamps(session, reminder)
    reason = f"email: rejeté : {why}"
    await session.execute(
        update(Reminder).where(Reminder.id == reminder.id, Reminder.state == SENT)
        .values(state=FAILED if last else PENDING, sent_at=None, stamp_undo=None,
                channel_index=reminder.channel_index + (0 if last else 1),
                next_attempt_at=utcnow(), attempts=0, last_error=reason[:2000])
        .execution_options(synchronize_session=False))
    customer.email_bounced_at = utcnow()
    customer.email_bounce = customer.email
    then = "abandonnée" if last else f"envoi par {names[reminder.channel_index + 1]}"
    kept = "" if restored else " (la date de relance reste : elle a été posée avant cette version)"
    await records.note(session, reminder, user=app.user, event="bounce",
                       text=f"Email rejeté : {why} — {then}{kept}")
    log.warning("reminder %s: email to %s bounced (%s); %s", reminder.id, customer.code, why, then)
    return True


async def _restore_stamps(session: AsyncSession, reminder: Reminder) -> bool:
    """Put back each invoice's "Relancé le" as it was before this reminder stamped it,
    unless a later reminder has stamped it since.  False when the stamp kept no undo."""
    if not reminder.stamp_undo:
        return False
    for part in reminder.stamp_undo.split(";"):
        invoice_id, before, level, here, stamped_on, stamped_level = part.split(",")
        invoice = await session.get(Invoice, int(invoice_id))
        if invoice is None or invoice.last_reminded_on != dt.date.fromisoformat(stamped_on) \
                or invoice.last_reminded_level != int(stamped_level):
            continue
        invoice.last_reminded_on = dt.date.fromisoformat(before) if before else None
        invoice.last_reminded_level = int(level) if level else None
        invoice.reminded_here = here == "1"
    return True
