"""The escalation rule: which invoices move up one level on a given day.

- level 0 → 1 when more than D1 days have passed since the due date;
- level N → N+1 (N = 1, 2) when the level-N reminder has been sent
  (``last_reminded_level = N``) and more than D(N+1) days have passed since
  it left (``last_reminded_on``); so an invoice never climbs past a letter
  that was not sent, and a second run on the same day changes nothing;
- level 3 stays 3.

Eligible invoices are unpaid, past due, not on hold (or the hold has
ended), of a customer who has not opted out, and owe at least the policy's
minimum.  Each Dn is the ``delay_days`` of level n in the policy the
customer falls under (:mod:`relances.daemon.ledger.policies`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ColumnElement, and_, not_, or_, select
from sqlalchemy.ext.compiler import compiles

from relances.daemon.config import Settings
from relances.daemon.ledger.due import held
from relances.daemon.ledger.policies import policy_groups
from relances.daemon.models import Customer, Invoice


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
