"""Reprint: send again the exact PDF that left, as the seed's printer icon does."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from relances.daemon.dispatch.channels import Channels, recipient_of
from relances.daemon.dispatch.records import reminder_word
from relances.daemon.errors import LedgerError
from relances.daemon.ledger.book import add_history, invoice_by_number
from relances.daemon.models import Customer, Document, Invoice, Reminder
from relances.daemon.storage import App
from relances.plugins.contract import Attachment, Delivery, DeliveryError, Receipt
from relances.plugins.manager import notify_delivery_attempted


@dataclass(frozen=True)
class Sent:
    """One reminder that left, with the document that left."""

    reminder_id: int
    kind: str
    level: int
    channel: str
    sent_at: dt.datetime
    invoice_numbers: tuple[str, ...]
    document_id: int
    size: int


def _sent_query(customer_id: int) -> Any:
    # A reminder queued again (`send --force`) keeps what it sent last.
    return (select(Reminder, Document.size)
            .join(Document, Document.id == Reminder.document_id)
            .where(Reminder.sent_at.is_not(None), Reminder.customer_id == customer_id)
            .order_by(Reminder.sent_at.desc(), Reminder.id.desc()))


def _sent(reminder: Reminder, size: int, number: str | None = None) -> Sent:
    numbers = tuple(n for n in reminder.invoice_numbers.split(",") if n) or (
        (number,) if number else ())
    assert reminder.sent_at is not None and reminder.document_id is not None
    return Sent(reminder.id, reminder.kind, reminder.level,
                reminder.sent_channel or reminder.channels.split(",")[0], reminder.sent_at,
                numbers, reminder.document_id, size)


async def sent_for(session: AsyncSession, invoice: Invoice) -> list[Sent]:
    """What left for ``invoice``, newest first: its letters and the statements listing it."""
    found = []
    for reminder, size in (await session.execute(_sent_query(invoice.customer_id))).all():
        # Letters name their invoice; statements list theirs, and only the
        # customer's own statements can cover it: compare the list exactly.
        if reminder.invoice_id == invoice.id or (
                reminder.kind == "statement"
                and invoice.number in reminder.invoice_numbers.split(",")):
            found.append(_sent(reminder, size, invoice.number))
    return found


async def sent_to(session: AsyncSession, customer_id: int, *, limit: int = 200) -> list[Sent]:
    """What left for a customer, newest first (the last ``limit``)."""
    rows = (await session.execute(_sent_query(customer_id).limit(limit))).all()
    numbers: dict[int, str] = dict((await session.execute(
        select(Invoice.id, Invoice.number).where(Invoice.customer_id == customer_id))).all())
    return [_sent(reminder, size, numbers.get(reminder.invoice_id)) for reminder, size in rows]


async def document_of(session: AsyncSession, reminder_id: int) -> tuple[Sent, bytes] | None:
    """A sent reminder and the exact bytes of the PDF that left."""
    row = (await session.execute(
        select(Reminder, Document).join(Document, Document.id == Reminder.document_id)
        .where(Reminder.id == reminder_id, Reminder.sent_at.is_not(None)))).first()
    if row is None:
        return None
    reminder, document = row
    number = None
    if reminder.invoice_id is not None:
        number = (await session.execute(
            select(Invoice.number).where(Invoice.id == reminder.invoice_id))).scalar()
    return _sent(reminder, document.size, number), document.content


async def last_sent(app: App, number: str) -> tuple[Reminder, Document, Customer]:
    async with app.sessions() as session:
        invoice = await invoice_by_number(session, number)
        sent = await sent_for(session, invoice)
        if sent:
            reminder = await session.get(Reminder, sent[0].reminder_id)
            document = await session.get(Document, sent[0].document_id)
            customer = await session.get(Customer, invoice.customer_id)
            assert reminder and document and customer
            return reminder, document, customer
    raise LedgerError(f"invoice {number}: no reminder has been sent yet, nothing to reprint")


async def reprint(app: App, number: str, *, channel: str | None = None) -> Receipt:
    """Send the stored document again; record it; stamp nothing."""
    reminder, document, customer = await last_sent(app, number)
    name = channel or reminder.sent_channel or reminder.channels.split(",")[0]
    word = "releve" if reminder.kind == "statement" else "relance"
    filename = f"{word}-{reminder.level}-{number}.pdf"
    # The reminder's own key with ``reprint``: the channel makes it a new
    # message that refers to the one the reminder sent (its Message-ID, for
    # email, is derived from the key), so the customer's mail client threads it.
    delivery = Delivery(
        key=reminder.key,
        kind="statement" if reminder.kind == "statement" else "letter", level=reminder.level,
        recipient=recipient_of(customer),
        subject=f"{reminder_word(reminder.kind)} niveau {reminder.level} – {number} (duplicata)",
        pdf=document.content, filename=filename,
        attachments=(Attachment(filename, document.content),),
        text_body="Veuillez trouver ci-joint le duplicata de notre courrier de relance.\n",
        invoice_numbers=tuple(reminder.invoice_numbers.split(",")), reprint=True,
    )
    channels = Channels(app, app.plugins)
    try:
        ch = await channels.get(name)
        try:
            receipt = await channels.send(name, delivery)
            assert receipt is not None  # asked nothing before sending: sent, or raised
        except DeliveryError as exc:
            notify_delivery_attempted(app.plugins, delivery, None, exc)
            raise
        notify_delivery_attempted(app.plugins, delivery, receipt, None)
    finally:
        await channels.close()
    async with app.sessions.begin() as session:
        invoice = await invoice_by_number(session, number)
        add_history(session, user=app.user, event="reprinted", invoice_id=invoice.id,
                    customer_id=invoice.customer_id, level=reminder.level, channel=name,
                    reference=receipt.reference,
                    action=f"Réimpression {reminder_word(reminder.kind).lower()} niveau "
                           f"{reminder.level} ({ch.label})")
    return receipt
