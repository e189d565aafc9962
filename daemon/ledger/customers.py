"""Customers as the books name them: created on first sight, kept up to date.

An empty cell never erases what a customer import or a person set; a
SIREN or VAT number makes a business only of a customer whose kind is not
known; a change of kind writes a line in the customer's history.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from relances.daemon.config import Settings
from relances.daemon.ledger.bulk import CHUNK, bulk_insert, history_row, uniform
from relances.daemon.ledger.kinds import KIND_LABELS, implied_kind
from relances.daemon.ledger.readers import InvoiceRow
from relances.daemon.ledger.rowstore import customer_values, fold_customer
from relances.daemon.models import Customer, HistoryEntry, utcnow


def wanted_customers(rows: Sequence[InvoiceRow], details: Mapping[str, Mapping[str, Any]],
                      listed: set[str] | None) -> dict[str, dict[str, Any]]:
    """What the rows (and ``details``) say of each customer, by code: a non-empty
    value wins over the rows before.  The invoice numbers go to ``listed`` when it
    is given."""
    if not details and listed is None:
        return customer_values(rows)  # an export's were gathered as it was read
    wanted: dict[str, dict[str, Any]] = {}
    for row in rows:
        code = row.customer_code
        values = wanted.get(code)
        if values is None:
            values = wanted[code] = {}
        if details:
            values.update({k: v for k, v in details.get(code, {}).items() if v})
        fold_customer(values, code, row.customer_name, row.affiliate_code, row.email,
                      row.customer_kind, row.customer_siren, row.customer_vat)
        if listed is not None:
            listed.add(row.number)
    return wanted


async def sync_customers(session: AsyncSession, settings: Settings,
                          wanted: Mapping[str, Mapping[str, Any]], *, source: str,
                          user: str) -> dict[str, int]:
    """Create the customers a file names for the first time; take what it says of
    the others (an empty cell never erases a value).  Returns code → id."""
    codes = sorted(wanted)
    found: dict[str, tuple[int, dict[str, Any]]] = {}
    compared = ("name", "affiliate_code", "email", "kind", "siren", "vat_number",
                "address_line1", "address_line2", "postal_code", "city", "country")
    cols = [getattr(Customer, name) for name in compared]
    for i in range(0, len(codes), CHUNK):
        result = await session.execute(
            select(Customer.code, Customer.id, *cols).where(Customer.code.in_(codes[i:i + CHUNK])))
        found.update({r[0]: (r[1], dict(zip(compared, r[2:], strict=True))) for r in result})
    now = utcnow()
    new = [{"code": code, "name": values.get("name", code),
            "kind": values.get("kind") or implied_kind(values, None)
            or settings.customers.default_kind,
            **{k: v for k, v in values.items() if k not in {"name", "kind"}},
            "created_at": now, "updated_at": now}
           for code, values in wanted.items() if code not in found]
    changed, history = [], []
    for code, (customer_id, before) in found.items():
        diff = {k: v for k, v in wanted[code].items() if before[k] != v}
        if implied := implied_kind(wanted[code], before["kind"]):
            diff["kind"] = implied
        if diff:
            changed.append({"id": customer_id, **diff, "updated_at": now})
        if "kind" in diff:
            history.append(history_row(user, None, customer_id, "kind",
                                    f"Nature du client modifiée : {KIND_LABELS[before['kind']]} "
                                    f"→ {KIND_LABELS[diff['kind']]} ({source})"))
    if new:
        await bulk_insert(session, Customer, uniform(new))
    if changed:
        await session.execute(update(Customer), changed)
    if history:
        await bulk_insert(session, HistoryEntry, history)
    ids = {code: customer_id for code, (customer_id, _) in found.items()}
    if new:
        for i in range(0, len(new), CHUNK):
            result = await session.execute(select(Customer.code, Customer.id).where(
                Customer.code.in_([c["code"] for c in new[i:i + CHUNK]])))
            ids.update({code: customer_id for code, customer_id in result})
    return ids
