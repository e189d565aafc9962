"""Which policy of ``settings.yaml`` a customer's invoices fall under.

A customer names a policy (``Customer.policy``); one that names none, or a
policy the settings do not define, falls under ``default``.  Escalation
and dispatch both ask here, in SQL, so that they never disagree.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import ColumnElement, case, literal, select, true

from relances.daemon.config import Settings
from relances.daemon.models import Customer, Invoice


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


def policy_name(settings: Settings) -> ColumnElement[Any]:
    """The name of the policy a row's customer falls under (the query joins ``Customer``)."""
    named = [name for name in settings.policies if name != "default"]
    if not named:
        return literal("default")
    return case(*((Customer.policy == name, literal(name)) for name in named),
                else_=literal("default"))
