"""What the service has done and what waits: the outbox by state, the
reminders that wait for a person, the last runs and failures.

``relances status`` prints it; the web screen's dashboard shows the same.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from relances.daemon.config import Settings
from relances.daemon.ledger.due import due_letters
from relances.daemon.models import BankEntry, BankStatement, Reminder, RunRecord

STATES = ("pending", "sending", "awaiting", "sent", "failed", "cancelled")


@dataclass(frozen=True)
class Status:
    states: dict[str, int]
    waiting: dict[int, list[str]]
    runs: Sequence[RunRecord]
    retrying: Sequence[Reminder]
    failures: Sequence[Reminder]
    imports: Sequence[RunRecord] = ()  # the last import of each source
    failed_imports: Sequence[RunRecord] = ()
    last_statement: BankStatement | None = None
    review: int = 0  # bank entries waiting for a person


async def waiting_for_a_person(session: AsyncSession, settings: Settings, *,
                               as_of: dt.date) -> dict[int, list[str]]:
    """Invoice numbers by level, due for a reminder that waits for `relances send`."""
    manual = [(name, level) for name, policy in settings.policies.items()
              for level in (1, 2, 3) if not policy.level(level).auto_send]
    if not manual:
        return {}
    due = due_letters(settings, as_of=as_of).subquery()
    query = (select(due.c.level, due.c.number, due.c.policy)
             .order_by(due.c.level, due.c.due_date, due.c.number))
    waiting: dict[int, list[str]] = {}
    wanted = set(manual)
    for level, number, policy in await session.execute(query):
        if (policy, level) in wanted:
            waiting.setdefault(level, []).append(number)
    return waiting


async def service_status(session: AsyncSession, settings: Settings, *, as_of: dt.date,
                         runs: int = 6, reminders: int = 10) -> Status:
    """Everything ``relances status`` shows, read in one session."""
    states: dict[str, int] = {state: count for state, count in (await session.execute(
        select(Reminder.state, func.count()).group_by(Reminder.state))).all()}
    return Status(
        states={state: int(states.get(state, 0)) for state in STATES},
        waiting=await waiting_for_a_person(session, settings, as_of=as_of),
        runs=(await session.execute(
            select(RunRecord).where(RunRecord.job.not_like("import:%"))
            .order_by(RunRecord.started_at.desc(), RunRecord.id.desc())
            .limit(runs))).scalars().all(),
        imports=await _last_imports(session),
        failed_imports=(await session.execute(
            select(RunRecord).where(RunRecord.job.like("import:%"), RunRecord.ok.is_(False))
            .order_by(RunRecord.id.desc()).limit(reminders))).scalars().all(),
        retrying=(await session.execute(
            select(Reminder).where(Reminder.state == "pending", Reminder.attempts > 0)
            .order_by(Reminder.next_attempt_at).limit(reminders))).scalars().all(),
        failures=(await session.execute(
            select(Reminder).where(Reminder.state == "failed")
            .order_by(Reminder.id.desc()).limit(reminders))).scalars().all(),
        last_statement=await session.scalar(
            select(BankStatement).order_by(BankStatement.id.desc()).limit(1)),
        review=await session.scalar(
            select(func.count()).select_from(BankEntry).where(BankEntry.state == "review")) or 0,
    )


async def _last_imports(session: AsyncSession) -> Sequence[RunRecord]:
    last = (select(func.max(RunRecord.id)).where(RunRecord.job.like("import:%"))
            .group_by(RunRecord.job))
    return (await session.execute(select(RunRecord).where(RunRecord.id.in_(last))
                                  .order_by(RunRecord.job))).scalars().all()
