"""Imports into the book: invoices, customers and payments from files.

Imports are all-or-nothing: the file is parsed and validated whole by
:mod:`relances.daemon.ledger.readers` before one row is written, and the
writes share the caller's transaction.  Re-importing a file changes
nothing; a newer export updates amounts and dates but never lowers a level
or erases a reminder date.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from relances.daemon.errors import LedgerError
from relances.daemon.ledger.book import record_payment
from relances.daemon.ledger.readers import customer_rows, invoice_rows, payment_rows
from relances.daemon.models import Customer, Invoice, Payment, utcnow
from relances.daemon.storage import upsert

CHUNK = 500


@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int
    unchanged: int
    customers: int

    def __str__(self) -> str:
        return (f"{self.created + self.updated + self.unchanged} rows: {self.created} new, "
                f"{self.updated} updated, {self.unchanged} unchanged; "
                f"{self.customers} customers")


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _greatest(session: AsyncSession, a: Any, b: Any) -> ColumnElement[Any]:
    if session.get_bind().dialect.name == "postgresql":
        return func.greatest(a, b)
    return func.max(a, b)  # SQLite's two-argument max() is scalar


async def customer_ids(session: AsyncSession, codes: Iterable[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for chunk in _chunks(sorted(set(codes))):
        result = await session.execute(
            select(Customer.code, Customer.id).where(Customer.code.in_(chunk)))
        found.update({code: id_ for code, id_ in result})
    return found


async def _existing_invoices(session: AsyncSession,
                             numbers: Sequence[str]) -> dict[str, tuple[Any, ...]]:
    cols = (Invoice.number, Invoice.customer_id, Invoice.invoice_date, Invoice.due_date,
            Invoice.total, Invoice.remaining, Invoice.level, Invoice.last_reminded_on)
    found: dict[str, tuple[Any, ...]] = {}
    for chunk in _chunks(numbers):
        result = await session.execute(select(*cols).where(Invoice.number.in_(chunk)))
        found.update({row[0]: tuple(row[1:]) for row in result})
    return found


async def _upsert_customers_from_invoices(session: AsyncSession, rows: Sequence[Any]) -> int:
    by_code: dict[str, dict[str, Any]] = {}
    for row in rows:
        by_code[row.customer_code] = {
            "code": row.customer_code,
            "name": row.customer_name or row.customer_code,
            "affiliate_code": row.affiliate_code,
            "email": row.email,
        }
    values = list(by_code.values())
    for chunk in _chunks(values):
        stmt = upsert(session, Customer).values(
            [{**v, "created_at": utcnow(), "updated_at": utcnow()} for v in chunk])
        ex = stmt.excluded
        # An empty cell in an invoice export never erases what a customer import set.
        stmt = stmt.on_conflict_do_update(index_elements=["code"], set_={
            "name": case((ex.name != ex.code, ex.name), else_=Customer.name),
            "affiliate_code": func.coalesce(ex.affiliate_code, Customer.affiliate_code),
            "email": func.coalesce(ex.email, Customer.email),
        })
        await session.execute(stmt)
    return len(values)


async def import_invoices(session: AsyncSession, path: Path) -> ImportResult:
    """Validate a whole invoice file, then upsert it in the caller's transaction."""
    rows = invoice_rows(path)
    if not rows:
        return ImportResult(0, 0, 0, 0)
    existing = await _existing_invoices(session, [r.number for r in rows])
    customers = await _upsert_customers_from_invoices(session, rows)
    ids = await customer_ids(session, (r.customer_code for r in rows))
    created = updated = unchanged = 0
    payloads = []
    for row in rows:
        payload = {
            "number": row.number, "customer_id": ids[row.customer_code],
            "invoice_date": row.invoice_date, "due_date": row.due_date,
            "total": row.total, "remaining": row.remaining,
            "payment_method": row.payment_method, "settlement": row.settlement,
            "assignment": row.assignment, "representative": row.representative,
            "level": row.level, "last_reminded_on": row.last_reminded_on,
            "last_reminded_level": row.level if row.last_reminded_on else None,
            "pdf_path": row.pdf_path, "created_at": utcnow(), "updated_at": utcnow(),
        }
        payloads.append(payload)
        before = existing.get(row.number)
        if before is None:
            created += 1
        elif before == (payload["customer_id"], row.invoice_date, row.due_date, row.total,
                        row.remaining, max(before[5], row.level),
                        _later(before[6], row.last_reminded_on)):
            unchanged += 1
        else:
            updated += 1
    for chunk in _chunks(payloads, 300):
        await session.execute(_invoice_upsert(session, chunk))
    return ImportResult(created, updated, unchanged, customers)


def _later(a: dt.date | None, b: dt.date | None) -> dt.date | None:
    if a is None or b is None:
        return a or b
    return max(a, b)


def _invoice_upsert(session: AsyncSession, chunk: Sequence[dict[str, Any]]) -> Any:
    stmt = upsert(session, Invoice).values(list(chunk))
    ex = stmt.excluded
    newer_reminder = and_(
        ex.last_reminded_on.is_not(None),
        or_(Invoice.last_reminded_on.is_(None), ex.last_reminded_on > Invoice.last_reminded_on),
    )
    changed = or_(
        Invoice.customer_id != ex.customer_id, Invoice.invoice_date != ex.invoice_date,
        Invoice.due_date != ex.due_date, Invoice.total != ex.total,
        Invoice.remaining != ex.remaining, ex.level > Invoice.level, newer_reminder,
    )
    return stmt.on_conflict_do_update(index_elements=["number"], set_={
        "customer_id": ex.customer_id,
        "invoice_date": ex.invoice_date,
        "due_date": ex.due_date,
        "total": ex.total,
        "remaining": ex.remaining,
        "payment_method": func.coalesce(ex.payment_method, Invoice.payment_method),
        "settlement": func.coalesce(ex.settlement, Invoice.settlement),
        "assignment": func.coalesce(ex.assignment, Invoice.assignment),
        "representative": func.coalesce(ex.representative, Invoice.representative),
        "pdf_path": func.coalesce(ex.pdf_path, Invoice.pdf_path),
        # Never lower a level, never erase a reminder date already recorded.
        "level": _greatest(session, Invoice.level, ex.level),
        "last_reminded_on": case((newer_reminder, ex.last_reminded_on),
                                 else_=Invoice.last_reminded_on),
        "last_reminded_level": case((newer_reminder, ex.last_reminded_level),
                                    else_=Invoice.last_reminded_level),
        "updated_at": case((changed, ex.updated_at), else_=Invoice.updated_at),
    })


async def import_customers(session: AsyncSession, path: Path,
                           policies: Collection[str] | None = None) -> ImportResult:
    """Validate a whole customer file, then upsert it by customer code.

    ``policies``: the policy names the settings define; a row naming
    another one is refused.
    """
    rows = customer_rows(path)
    for row in rows:
        policy = row.values.get("policy")
        if policies is not None and policy and policy not in policies:
            known = ", ".join(sorted(policies))
            raise LedgerError(f"{row.where}: no policy named {policy!r} in the settings "
                              f"(known: {known})")
    existing: dict[str, Customer] = {}
    for chunk in _chunks(sorted({r.code for r in rows})):
        found = await session.execute(select(Customer).where(Customer.code.in_(chunk)))
        existing.update({c.code: c for c in found.scalars()})
    created = updated = unchanged = 0
    for row in rows:
        customer = existing.get(row.code)
        if customer is None:
            if not row.values.get("name"):
                raise LedgerError(f"{path}: customer {row.code}: a new customer needs a name")
            session.add(Customer(code=row.code, **row.values))
            created += 1
        elif all(getattr(customer, key) == value for key, value in row.values.items()):
            unchanged += 1
        else:
            for key, value in row.values.items():
                setattr(customer, key, value)
            updated += 1
    await session.flush()
    return ImportResult(created, updated, unchanged, created + updated + unchanged)


async def import_payments(session: AsyncSession, path: Path, user: str) -> ImportResult:
    """Record a file's payments; importing the same file again records nothing new.

    Rows with a reference are recorded once per reference.  Identical rows
    without one (same invoice, day and amount) are counted: a file holding
    two of them records two payments, and importing it again none, because
    two are already there.
    """
    rows = payment_rows(path)
    created = unchanged = 0
    seen: dict[tuple[int, dt.date, Decimal], int] = {}
    for row in rows:
        invoice = await session.scalar(select(Invoice).where(Invoice.number == row.invoice_number))
        if invoice is None:
            raise LedgerError(f"{row.where}: column 'invoice_number': "
                              f"no invoice numbered {row.invoice_number!r}")
        if not row.reference:
            key = (invoice.id, row.paid_on, row.amount)
            seen[key] = seen.get(key, 0) + 1
            known = await session.scalar(select(func.count()).select_from(Payment).where(
                Payment.invoice_id == invoice.id, Payment.paid_on == row.paid_on,
                Payment.amount == row.amount, Payment.reference == ""))
            if (known or 0) >= seen[key]:
                unchanged += 1
                continue
        try:
            recorded = await record_payment(session, invoice, amount=row.amount,
                                            paid_on=row.paid_on, user=user, method=row.method,
                                            reference=row.reference)
        except LedgerError as exc:
            raise LedgerError(f"{row.where}: {exc}") from None
        created += recorded
        unchanged += not recorded
    return ImportResult(created, 0, unchanged, 0)
