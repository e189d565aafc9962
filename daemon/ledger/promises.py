"""Promises to pay: a customer who says they will pay on a day gets no new
reminder until that day and ``customers.promise_grace_days``; once it has
passed, the history says whether the promise was kept (nothing of theirs
overdue is left unpaid) or not, and reminders resume."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from relances.daemon import formatting as fmt
from relances.daemon.errors import LedgerError
from relances.daemon.ledger.book import add_history, add_note
from relances.daemon.ledger.due import open_invoices
from relances.daemon.models import Customer, Invoice, Note


async def record_promise(session: AsyncSession, customer: Customer, *, user: str,
                         on: dt.date, text: str, grace_days: int, as_of: dt.date) -> Note:
    """Note the promise in the centre d'actions and hold the customer's reminders."""
    if on < as_of:
        raise LedgerError(f"{customer.code}: a promise to pay is for a day to come, "
                          f"not {fmt.date(on)}")
    until = on + dt.timedelta(days=grace_days)
    said = f"Promesse de règlement pour le {fmt.date(on)}"
    note = await add_note(session, customer, user=user, kind="promise",
                          text=f"{said} : {text.strip()}" if text.strip() else said)
    customer.promised_on, customer.promise_until = on, until
    add_history(session, user=user, event="promised", customer_id=customer.id,
                action=f"{said} (relances suspendues jusqu'au {fmt.date(until)})")
    return note


async def promised(session: AsyncSession, as_of: dt.date) -> Sequence[Customer]:
    """Customers whose promise to pay holds their reminders on ``as_of``."""
    return (await session.execute(
        select(Customer).where(Customer.promise_until >= as_of)
        .order_by(Customer.code))).scalars().all()


async def lapse_promises(session: AsyncSession, *, as_of: dt.date, user: str) -> list[str]:
    """End the promises whose time ran out before ``as_of``; the codes of those not kept."""
    lapsed = (await session.execute(
        select(Customer).where(Customer.promise_until < as_of)
        .order_by(Customer.code))).scalars().all()
    broken = []
    for customer in lapsed:
        assert customer.promised_on is not None
        unpaid = await session.scalar(
            select(func.count()).select_from(Invoice)
            .where(Invoice.customer_id == customer.id, open_invoices(),
                   Invoice.due_date <= customer.promised_on))
        day = fmt.date(customer.promised_on)
        if unpaid:
            broken.append(customer.code)
            add_history(session, user=user, event="promise_broken", customer_id=customer.id,
                        action=f"Promesse de règlement du {day} non tenue : relances reprises")
        else:
            add_history(session, user=user, event="promise_kept", customer_id=customer.id,
                        action=f"Promesse de règlement du {day} tenue")
        customer.promised_on = customer.promise_until = None
    return broken
