"""What the dashboard shows beside the service's status: the overdue
amount by age, and what was recovered after each level's reminders.

A payment counts as recovered by a reminder when it is paid within
``RECOVERY_DAYS`` days from the day the reminder left (that day included,
when the payment was recorded after the reminder left),
for an invoice the reminder named (a letter's invoice, the invoices a
statement listed); a payment that follows two reminders counts once, for
the later one.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from relances.daemon.ledger.due import open_invoices
from relances.daemon.models import Invoice, Payment, Reminder

AGES = ("0 à 30 jours", "31 à 60 jours", "61 à 90 jours", "plus de 90 jours")
RECOVERY_DAYS = 15
PERIOD_DAYS = 365  # the reminders whose recovery is counted: those sent in the last year


@dataclass(frozen=True)
class AgeBand:
    label: str
    count: int
    amount: Decimal


@dataclass
class Recovery:
    """The reminders of one level and channel, and what was paid after them."""

    level: int
    channel: str
    sent: int = 0
    followed: int = 0  # reminders followed by at least one payment in the window
    amount: Decimal = field(default_factory=lambda: Decimal(0))


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)  # SQLite


async def overdue_by_age(session: AsyncSession, as_of: dt.date) -> list[AgeBand]:
    """Open invoices past their due date, by days late (on ``as_of``)."""
    limits = [as_of - dt.timedelta(days=days) for days in (30, 60, 90)]
    band = case((Invoice.due_date >= limits[0], literal(0)),
                (Invoice.due_date >= limits[1], literal(1)),
                (Invoice.due_date >= limits[2], literal(2)), else_=literal(3))
    found = {row[0]: (row[1], row[2]) for row in await session.execute(
        select(band, func.count(), func.sum(Invoice.remaining))
        .where(open_invoices(), Invoice.due_date < as_of).group_by(band))}
    return [AgeBand(label, int(found.get(i, (0, 0))[0]),
                    Decimal(found.get(i, (0, 0))[1] or 0)) for i, label in enumerate(AGES)]


async def recovered(session: AsyncSession, zone: ZoneInfo, as_of: dt.date) -> list[Recovery]:
    """By level and channel: reminders sent in the last year and what they recovered."""
    since = dt.datetime.combine(as_of - dt.timedelta(days=PERIOD_DAYS), dt.time(), zone)
    sent = (await session.execute(
        select(Reminder.id, Reminder.kind, Reminder.level, Reminder.sent_channel,
               Reminder.sent_at, Reminder.invoice_id, Reminder.invoice_numbers,
               Reminder.customer_id)
        .where(Reminder.sent_at.is_not(None), Reminder.sent_at >= since))).all()
    if not sent:
        return []
    customers = {row.customer_id for row in sent if row.kind == "statement"}
    by_number: dict[tuple[int, str], int] = {}
    if customers:
        by_number = {(c, n): i for i, c, n in await session.execute(
            select(Invoice.id, Invoice.customer_id, Invoice.number)
            .where(Invoice.customer_id.in_(customers)))}
    # Each invoice's reminders, by the day they left.
    left: dict[int, list[tuple[dt.date, dt.datetime, int]]] = defaultdict(list)
    groups: dict[int, tuple[int, str]] = {}
    for row in sent:
        assert row.sent_at is not None
        day = row.sent_at.astimezone(zone).date()
        groups[row.id] = (row.level, row.sent_channel or "")
        invoices = ([row.invoice_id] if row.invoice_id is not None else
                    [by_number[(row.customer_id, n)] for n in row.invoice_numbers.split(",")
                     if (row.customer_id, n) in by_number])
        for invoice_id in invoices:
            left[invoice_id].append((day, _aware(row.sent_at), row.id))
    table: dict[tuple[int, str], Recovery] = {}
    for level, channel in groups.values():
        table.setdefault((level, channel), Recovery(level, channel))
    for key in groups.values():
        table[key].sent += 1
    followed: set[int] = set()
    first = min(day for days in left.values() for day, _, _ in days)
    payments = await session.execute(
        select(Payment.invoice_id, Payment.paid_on, Payment.amount, Payment.recorded_at)
        .where(Payment.invoice_id.in_(select(Reminder.invoice_id).where(
            Reminder.sent_at >= since, Reminder.invoice_id.is_not(None)).union(
            select(Invoice.id).where(Invoice.customer_id.in_(customers)))),
            Payment.paid_on >= first))
    for invoice_id, paid_on, amount, recorded_at in payments:
        # Paid the day a reminder left: it followed the reminder if it was recorded after.
        before = [(day, at, rid) for day, at, rid in left.get(invoice_id, ())
                  if day < paid_on or (day == paid_on and at <= _aware(recorded_at))]
        if not before:
            continue
        day, _, reminder_id = max(before)
        if (paid_on - day).days < RECOVERY_DAYS:
            table[groups[reminder_id]].amount += amount
            followed.add(reminder_id)
    for reminder_id in followed:
        table[groups[reminder_id]].followed += 1
    return sorted(table.values(), key=lambda r: (r.level, r.channel))
