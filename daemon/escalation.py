"""Escalation ("incrémentation de relances"): raise eligible invoices one level.

A run is one set-based UPDATE: it finds every invoice that moves, whatever
its level and policy, and raises it by one, so an invoice climbs at most
one level a run:

- level 0 → 1 when more than D1 days have passed since the due date;
- level N → N+1 (N = 1, 2) when the level-N reminder has been sent
  (``last_reminded_level = N``) and more than D(N+1) days have passed since
  it left (``last_reminded_on``); so an invoice never climbs past a letter
  that was not sent, and a second run on the same day changes nothing;
- level 3 stays 3.

Eligible invoices are unpaid, past due, not on hold (or the hold has
ended), of a customer who has not opted out, and owe at least the policy's
minimum.  The run is recorded with its time and user, and each invoice it
raises keeps the run's id for that level, written by the same UPDATE: the
invoice's history shows the step as "Passage au niveau 2 (incrémentation)".
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, not_, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles

from relances.daemon.config import Settings
from relances.daemon.listing import held
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


def policy_groups(settings: Settings) -> Iterator[tuple[str, ColumnElement[bool]]]:
    """Each policy with the condition that picks its customers' invoices."""
    named = [name for name in settings.policies if name != "default"]
    for name in named:
        yield name, Invoice.customer_id.in_(
            select(Customer.id).where(Customer.policy == name))
    if named:
        others = select(Customer.id).where(Customer.policy.in_(named))
        yield "default", Invoice.customer_id.not_in(others)
    else:
        yield "default", true()


class _Scanned(ColumnElement[Any]):
    """A column read as it is, but never through an index (SQLite's unary ``+``).

    Escalation reads most open invoices: going straight through the table
    is several times faster than a lookup per row through the due-date
    index that the reminders table needs.  Other databases plan this
    themselves from their statistics.
    """

    inherit_cache = True

    def __init__(self, column: ColumnElement[Any]) -> None:
        self.column = column
        self.type = column.type


@compiles(_Scanned)
def _scanned_default(element: _Scanned, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.column, **kw))


@compiles(_Scanned, "sqlite")
def _scanned_sqlite(element: _Scanned, compiler: Any, **kw: Any) -> str:
    return "+" + str(compiler.process(element.column, **kw))


def eligible(settings: Settings, *, as_of: dt.date, customer: str | None) -> ColumnElement[bool]:
    """Conditions shared by every level: what may be reminded at all."""
    opted_out = select(Customer.id).where(Customer.opted_out.is_(True))
    due_date = _Scanned(Invoice.due_date)
    conditions = [Invoice.remaining > 0, due_date < as_of, not_(held(as_of)),
                  Invoice.customer_id.not_in(opted_out)]
    if customer is not None:
        conditions.append(Invoice.customer_id.in_(
            select(Customer.id).where(Customer.code == customer)))
    return and_(*conditions)


def _clock(settings: Settings, level: int, *, as_of: dt.date,
           days: int | None) -> ColumnElement[bool]:
    """Invoices at ``level`` whose delay before ``level + 1`` has run out."""
    per_policy = []
    for name, in_group in policy_groups(settings):
        policy = settings.policies[name]
        delay = days if days is not None else policy.level(level + 1).delay_days
        cutoff = as_of - dt.timedelta(days=delay)
        if level == 0:
            clock = _Scanned(Invoice.due_date) < cutoff
        else:
            clock = and_(Invoice.last_reminded_level == level, Invoice.last_reminded_on < cutoff)
        conditions = [in_group, clock]
        if policy.minimum_amount:
            conditions.append(Invoice.remaining >= policy.minimum_amount)
        per_policy.append(and_(*conditions))
    return and_(Invoice.level == level, or_(*per_policy))


def rule(settings: Settings, *, as_of: dt.date, days: int | None = None,
         customer: str | None = None) -> ColumnElement[bool]:
    """Every invoice that moves up one level on ``as_of``, whatever its level.

    The levels' conditions are disjoint (each names its level), so one
    statement moves every invoice at most one level.
    """
    by_level = [_clock(settings, level, as_of=as_of, days=days) for level in (0, 1, 2)]
    return and_(eligible(settings, as_of=as_of, customer=customer), or_(*by_level))


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

