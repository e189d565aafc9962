"""What waits for a person: due reminders at levels that do not send on their own."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from relances.daemon.config import Settings
from relances.daemon.escalation import policy_groups
from relances.daemon.models import Invoice
from relances.daemon.outbox import not_yet_reminded, sendable


async def waiting_for_a_person(session: AsyncSession, settings: Settings, *,
                               as_of: dt.date) -> dict[int, list[str]]:
    """Invoice numbers by level, due for a reminder that waits for `relances send`."""
    waiting: dict[int, list[str]] = {}
    for name, in_group in policy_groups(settings):
        for level in (1, 2, 3):
            if settings.policies[name].level(level).auto_send:
                continue
            numbers = (await session.execute(
                select(Invoice.number).where(Invoice.level == level, sendable(as_of), in_group,
                                             not_yet_reminded(level))
                .order_by(Invoice.due_date, Invoice.number))).scalars().all()
            if numbers:
                waiting.setdefault(level, []).extend(numbers)
    return waiting
