"""Escalation ("incrémentation de relances"): raise eligible invoices one level.

A run is one set-based UPDATE of every invoice the rule
(:mod:`relances.daemon.escalation.rule`) moves, whatever its level and
policy, so an invoice climbs at most one level a run.  The run is recorded
with its time and user, and each invoice it raises keeps the run's id for
that level, written by the same UPDATE: the invoice's history shows the
step as "Passage au niveau 2 (incrémentation)".
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
from dataclasses import dataclass, field

from sqlalchemy import case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from relances.daemon.config import Settings
from relances.daemon.escalation.rule import rule
from relances.daemon.ledger.promises import lapse_promises
from relances.daemon.models import Customer, Invoice, RunRecord, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Change:
    invoice_number: str
    customer_code: str
    from_level: int
    to_level: int


@dataclass
class EscalationResult:
    moved: dict[int, int] = field(default_factory=lambda: {1: 0, 2: 0, 3: 0})
    changes: list[Change] = field(default_factory=list)  # filled by dry runs only

    @property
    def total(self) -> int:
        return sum(self.moved.values())

    def __str__(self) -> str:
        parts = ", ".join(f"{n} to level {level}" for level, n in self.moved.items())
        return f"{self.total} invoices escalated ({parts})"


async def escalate(
    session: AsyncSession, settings: Settings, *, as_of: dt.date, user: str,
    customer: str | None = None, days: int | None = None, dry_run: bool = False,
) -> EscalationResult:
    """Raise every eligible invoice by one level, in the caller's transaction."""
    result = EscalationResult()
    moving = rule(settings, as_of=as_of, days=days, customer=customer)
    if dry_run:
        rows = await session.execute(
            select(Invoice.number, Customer.code, Invoice.level)
            .join(Customer, Customer.id == Invoice.customer_id)
            .where(moving).order_by(Invoice.due_date, Invoice.number))
        for number, code, level in rows:
            result.changes.append(Change(number, code, level, level + 1))
            result.moved[level + 1] += 1
        return result
    # Promises whose day and grace have passed end first: the history says
    # whether each was kept, and the customers' reminders resume.
    await lapse_promises(session, as_of=as_of, user=user)
    run = RunRecord(job="escalate", user=user, started_at=utcnow(), host=socket.gethostname())
    session.add(run)
    await session.flush()
    await session.execute(
        update(Invoice).where(moving).values(
            level=Invoice.level + 1,
            level1_run_id=case((Invoice.level == 0, run.id), else_=Invoice.level1_run_id),
            level2_run_id=case((Invoice.level == 1, run.id), else_=Invoice.level2_run_id),
            level3_run_id=case((Invoice.level == 2, run.id), else_=Invoice.level3_run_id),
        ).execution_options(synchronize_session=False))
    # Counted after the UPDATE, in its transaction: exactly the rows it raised.
    counts = await session.execute(
        select(Invoice.level, func.count())
        .where(or_(Invoice.level1_run_id == run.id, Invoice.level2_run_id == run.id,
                   Invoice.level3_run_id == run.id))
        .group_by(Invoice.level))
    result.moved.update(dict(counts.all()))
    run.finished_at = utcnow()
    run.summary = str(result)
    log.info("escalation as of %s: %s", as_of, result)
    return result
