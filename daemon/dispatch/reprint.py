"""Reprint: send again the exact PDF that left, as the seed's printer icon does."""

from __future__ import annotations

from sqlalchemy import select

from relances.daemon.dispatch.channels import Channels, recipient_of
from relances.daemon.dispatch.records import reminder_word
from relances.daemon.errors import LedgerError
from relances.daemon.ledger.book import add_history, invoice_by_number
from relances.daemon.models import Customer, Document, Reminder
from relances.daemon.storage import App
from relances.plugins.contract import Attachment, Delivery, DeliveryError, Receipt
from relances.plugins.manager import notify_delivery_attempted


async def last_sent(app: App, number: str) -> tuple[Reminder, Document, Customer]:
    async with app.sessions() as session:
        invoice = await invoice_by_number(session, number)
        # Letters name their invoice; statements list theirs, and only the
        # customer's own statements can cover it: compare the list exactly.
        rows = (await session.execute(
            select(Reminder, Document, Customer)
            .join(Document, Document.id == Reminder.document_id)
            .join(Customer, Customer.id == Reminder.customer_id)
            # A reminder queued again (`send --force`) keeps what it sent last.
            .where(Reminder.sent_at.is_not(None), Reminder.customer_id == invoice.customer_id)
            .order_by(Reminder.sent_at.desc(), Reminder.id.desc()))).all()
    for reminder, document, customer in rows:
        if reminder.invoice_id == invoice.id or (
                reminder.kind == "statement" and number in reminder.invoice_numbers.split(",")):
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
