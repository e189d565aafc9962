"""What may be reminded, and which reminder is due.

An invoice may be reminded when something remains due on it, its due date
has passed, it is not in dispute (or its hold has ended), and its customer
has not asked not to be reminded, has no bank payment waiting for review
that may be theirs (uncertain means silent) and has not replied lately.
The reminder of its current level is due while that level's reminder has
not been sent (``last_reminded_level`` below the level) and the invoice
owes at least its policy's minimum.

:func:`due_letters` is the one query that says which invoices a letter is
due for: dispatch's outbox queues from it, and the service's status shows
from it what waits for a person.  :func:`not_remindable` says why one
invoice may no longer be reminded, for dispatch to check again when it
takes a queued reminder.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, literal_column, not_, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from relances.daemon.config import Settings
from relances.daemon.ledger.policies import policy_name
from relances.daemon.models import Customer, Invoice, Reminder


def open_invoices() -> Any:
    """Something remains due on the invoice."""
    # A literal, not a bound parameter: SQLite uses the partial index on
    # open invoices only when the query repeats its condition word for word.
    return Invoice.remaining > literal_column("0")


def held(as_of: dt.date) -> Any:
    """An invoice in dispute whose hold has not ended by ``as_of``."""
    return and_(Invoice.on_hold.is_(True),
                or_(Invoice.hold_until.is_(None), Invoice.hold_until >= as_of))


def remindable(as_of: dt.date) -> ColumnElement[bool]:
    """An invoice that a reminder may go to at all: open, overdue, not disputed,
    of a customer who has not opted out, has no bank payment waiting for
    review that may be theirs, whose reply has not paused them and whose
    promise to pay has not run out."""
    silent = select(Customer.id).where(or_(Customer.opted_out.is_(True),
                                           Customer.review_until >= as_of,
                                           Customer.paused_until >= as_of,
                                           Customer.promise_until >= as_of))
    return and_(open_invoices(), Invoice.due_date < as_of, not_(held(as_of)),
                Invoice.customer_id.not_in(silent))


def not_yet_reminded(level: Any) -> ColumnElement[bool]:
    """The reminder of ``level`` (a number or a column) has not been sent yet."""
    return or_(Invoice.last_reminded_level.is_(None), Invoice.last_reminded_level < level)


def at_least_minimum(settings: Settings, policy: ColumnElement[Any]) -> ColumnElement[bool]:
    """The invoice owes at least the minimum of the policy named by ``policy``."""
    conditions = []
    for name, rules in settings.policies.items():
        if rules.minimum_amount:
            # Compared column to value, so the amount is bound as the column's money type.
            conditions.append(and_(policy == name, Invoice.remaining < rules.minimum_amount))
    return not_(or_(*conditions)) if conditions else true()


def contact_window(settings: Settings, as_of: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The ``customers.min_contact_days`` - 1 days before ``as_of``: a reminder sent then
    makes the customer's next contact wait (one of the same day is the same contact)."""
    days = settings.customers.min_contact_days
    since = dt.datetime.combine(as_of - dt.timedelta(days=max(days - 1, 0)), dt.time(),
                                settings.zone)
    return since, dt.datetime.combine(as_of, dt.time(), settings.zone)


def contact_waited(settings: Settings, as_of: dt.date) -> list[ColumnElement[bool]]:
    """The condition that the invoice's customer was not reached within
    :func:`contact_window` (none when ``customers.min_contact_days`` is 0 or 1)."""
    if settings.customers.min_contact_days <= 1:
        return []
    since, until = contact_window(settings, as_of)
    return [Invoice.customer_id.not_in(select(Reminder.customer_id).where(
        Reminder.sent_at >= since, Reminder.sent_at < until))]


def due_letters(settings: Settings, *, as_of: dt.date, customer: str | None = None,
                invoice: str | None = None, again: bool = False) -> Select[Any]:
    """Every invoice a letter is due for at its current level, as of ``as_of``.

    Columns: ``id``, ``number``, ``customer_id``, ``level``, ``due_date``,
    ``policy`` (the name of the policy the customer falls under).  ``again``
    keeps the invoices whose reminder at that level has already been sent
    (``send --force``), and the customers contacted within
    ``customers.min_contact_days``.
    """
    policy = policy_name(settings)
    conditions = [Invoice.level >= 1, remindable(as_of), at_least_minimum(settings, policy)]
    if not again:
        conditions += [not_yet_reminded(Invoice.level), *contact_waited(settings, as_of)]
    if customer is not None:
        conditions.append(Customer.code == customer)
    if invoice is not None:
        conditions.append(Invoice.number == invoice)
    return (select(Invoice.id, Invoice.number, Invoice.customer_id, Invoice.level,
                   Invoice.due_date, policy.label("policy"))
            .join(Customer, Customer.id == Invoice.customer_id)
            .where(*conditions))


async def overdue_invoices(session: AsyncSession, customer_id: int,
                           as_of: dt.date) -> Sequence[Invoice]:
    """A customer's open, overdue invoices not in dispute, oldest due first (a statement)."""
    return (await session.execute(
        select(Invoice)
        .where(Invoice.customer_id == customer_id, open_invoices(), Invoice.due_date < as_of,
               not_(held(as_of)))
        .order_by(Invoice.due_date, Invoice.number))).scalars().all()


def not_remindable(settings: Settings, customer: Customer, invoice: Invoice | None,
                   as_of: dt.date, *, minimum: bool = True) -> str | None:
    """Why a reminder must no longer go to ``invoice`` (or to ``customer``), or None.

    ``minimum``: the invoice alone must owe the policy's minimum (a letter;
    a statement's minimum is on its total).
    """
    if customer.opted_out:
        return "the customer asked not to be reminded"
    if customer.review_until is not None and customer.review_until >= as_of:
        return "a bank payment that may be theirs waits for review"
    if customer.paused_until is not None and customer.paused_until >= as_of:
        return f"the customer replied: reminders pause until {customer.paused_until:%d/%m/%Y}"
    if customer.promise_until is not None and customer.promise_until >= as_of:
        assert customer.promised_on is not None
        return (f"the customer promised to pay on {customer.promised_on:%d/%m/%Y}: reminders "
                f"wait until {customer.promise_until:%d/%m/%Y}")
    if invoice is None:
        return None
    if invoice.remaining <= 0:
        return "the invoice has been paid"
    least = settings.policy(customer.policy).minimum_amount
    if minimum and invoice.remaining < least:
        return f"what remains due is below the policy's minimum ({least})"
    if invoice.on_hold and (invoice.hold_until is None or invoice.hold_until >= as_of):
        return "the invoice is in dispute"
    return None
