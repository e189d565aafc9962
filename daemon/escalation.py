"""Escalation ("incrémentation de relances"): raise eligible invoices one level.

One set-based statement per level and policy, run from the highest level
down so an invoice climbs at most one level a run:

- level 0 → 1 when more than D1 days have passed since the due date;
- level N → N+1 (N = 1, 2) when the level-N reminder has been sent
  (``last_reminded_level = N``) and more than D(N+1) days have passed since
  it left (``last_reminded_on``); so an invoice never climbs past a letter
  that was not sent, and a second run on the same day changes nothing;
- level 3 stays 3.

Eligible invoices are unpaid, past due, not on hold (or the hold has
ended), of a customer who has not opted out, and owe at least the policy's
minimum.  Each change writes one history entry, inserted by the same kind of
set-based statement just before the update.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from relances.daemon.config import Settings
from relances.daemon.listing import held, open_invoices
from relances.daemon.models import Customer, HistoryEntry, Invoice, utcnow
from sqlalchemy import ColumnElement, and_, false, insert, literal, not_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

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


def action_text(level: int) -> str:
    """The history line of an escalation, in the seed's language."""
    return f"Passage au niveau {level} (incrémentation)"


def _policy_groups(settings: Settings) -> Iterator[tuple[str, ColumnElement[bool]]]:
    """Each policy with the condition that picks its customers' invoices."""
    named = [name for name in settings.policies if name != "default"]
    for name in named:
        yield name, Invoice.customer_id.in_(
            select(Customer.id).where(Customer.policy == name))
    if named:
        others = select(Customer.id).where(Customer.policy.in_(named))
        yield "default", Invoice.customer_id.not_in(others)
    else:
        yield "default", literal(True)


def eligible(settings: Settings, *, as_of: dt.date, customer: str | None) -> ColumnElement[bool]:
    """Conditions shared by every level: what may be reminded at all."""
    opted_out = select(Customer.id).where(Customer.opted_out.is_(True))
    conditions = [open_invoices(), Invoice.due_date < as_of, not_(held(as_of)),
                  Invoice.customer_id.not_in(opted_out)]
    if customer is not None:
        conditions.append(Invoice.customer_id.in_(
            select(Customer.id).where(Customer.code == customer)))
    return and_(*conditions)


def _rule(settings: Settings, level: int, *, as_of: dt.date, days: int | None,
          customer: str | None) -> ColumnElement[bool]:
    """Invoices at ``level`` that move to ``level + 1`` on ``as_of``."""
    per_policy = []
    for name, in_group in _policy_groups(settings):
        policy = settings.policies[name]
        delay = days if days is not None else policy.level(level + 1).delay_days
        cutoff = as_of - dt.timedelta(days=delay)
        if level == 0:
            clock = Invoice.due_date < cutoff
        else:
            clock = and_(Invoice.last_reminded_level == level, Invoice.last_reminded_on < cutoff)
        minimum = Invoice.remaining >= policy.minimum_amount if policy.minimum_amount else None
        per_policy.append(and_(in_group, clock, *([minimum] if minimum is not None else [])))
    return and_(Invoice.level == level, eligible(settings, as_of=as_of, customer=customer),
                or_(*per_policy) if per_policy else false())


async def escalate(
    session: AsyncSession, settings: Settings, *, as_of: dt.date, user: str,
    customer: str | None = None, days: int | None = None, dry_run: bool = False,
) -> EscalationResult:
    """Raise every eligible invoice by one level, in the caller's transaction."""
    result = EscalationResult()
    now = utcnow()
    for level in (2, 1, 0):
        rule = _rule(settings, level, as_of=as_of, days=days, customer=customer)
        if dry_run:
            rows = await session.execute(
                select(Invoice.number, Customer.code)
                .join(Customer, Customer.id == Invoice.customer_id)
                .where(rule).order_by(Invoice.due_date, Invoice.number))
            changes = [Change(n, c, level, level + 1) for n, c in rows]
            result.changes.extend(changes)
            result.moved[level + 1] = len(changes)
            continue
        await session.execute(_history_insert(rule, level + 1, user=user, at=now))
        moved = await session.execute(
            update(Invoice).where(rule).values(level=level + 1)
            .execution_options(synchronize_session=False))
        result.moved[level + 1] = _rowcount(moved)
    log.info("escalation as of %s: %s", as_of, result)
    return result


def _rowcount(result: Any) -> int:
    return int(result.rowcount)


def _history_insert(rule: ColumnElement[bool], to_level: int, *, user: str,
                    at: dt.datetime) -> Any:
    rows = select(
        literal(at, HistoryEntry.at.type), literal(user), Invoice.id, Invoice.customer_id,
        literal("escalated"), literal(action_text(to_level)), literal(to_level),
    ).where(rule)
    return insert(HistoryEntry).from_select(
        ["at", "user", "invoice_id", "customer_id", "event", "action", "level"], rows)
