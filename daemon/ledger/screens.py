"""What a screen asks of the ledger beyond the command line: the reminders
table filtered, sorted and paged with its totals, a customer's open
invoices (due or not yet due), an invoice's payments.

The table is the query of :mod:`relances.daemon.ledger.listing` with more
conditions, so it shows exactly the rows `relances list` shows.  A page
costs one query for its rows and one for the count and totals, whatever
the size of the ledger: the database filters, sorts and pages.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from relances.daemon.ledger.due import open_invoices
from relances.daemon.ledger.listing import ReminderRow, reminders_query
from relances.daemon.models import Customer, Invoice, Payment

# The columns a screen may sort by, under the names its links use.
SORTS: dict[str, Any] = {
    "code": Customer.code, "nom": Customer.name, "date": Invoice.invoice_date,
    "numero": Invoice.number, "total": Invoice.total, "reste": Invoice.remaining,
    "echeance": Invoice.due_date, "relance": Invoice.last_reminded_on, "niveau": Invoice.level,
}
DEFAULT_SORT = "echeance"


@dataclass(frozen=True)
class TableFilter:
    """Which rows of the reminders table to show.

    ``customer`` is a customer's code, or a part of their name in any case;
    ``on_hold`` True keeps only invoices in dispute, False only the others;
    amounts bound what remains due.
    """

    customer: str | None = None
    level: int | None = None
    on_hold: bool | None = None
    min_remaining: Decimal | None = None
    max_remaining: Decimal | None = None


@dataclass(frozen=True)
class ScreenRow(ReminderRow):
    settlement: str | None = None  # the seed's "Rglmt." column


@dataclass(frozen=True)
class TablePage:
    rows: list[ScreenRow]
    count: int  # rows matching the filter, on every page
    total: Decimal  # their "Total Fac."
    remaining: Decimal  # their "Reste"
    page: int
    pages: int


def _held(as_of: dt.date) -> Any:
    return and_(Invoice.on_hold, or_(Invoice.hold_until.is_(None), Invoice.hold_until >= as_of))


def _filtered(as_of: dt.date, wanted: TableFilter) -> Any:
    query = reminders_query(as_of=as_of, level=wanted.level).add_columns(Invoice.settlement)
    if wanted.customer:
        needle = wanted.customer.strip()
        pattern = "%" + needle.lower().replace("\\", "\\\\").replace("%", "\\%") \
            .replace("_", "\\_") + "%"
        query = query.where(or_(Customer.code == needle,
                                func.lower(Customer.name).like(pattern, escape="\\")))
    if wanted.on_hold is True:
        query = query.where(_held(as_of))
    elif wanted.on_hold is False:
        query = query.where(~_held(as_of))
    if wanted.min_remaining is not None:
        query = query.where(Invoice.remaining >= wanted.min_remaining)
    if wanted.max_remaining is not None:
        query = query.where(Invoice.remaining <= wanted.max_remaining)
    return query


def _row(r: Any, as_of: dt.date, settings: Any) -> ScreenRow:
    # The same reading of a row as listing.reminders_table, plus the settlement.
    on_hold = bool(r[14]) and (r[15] is None or r[15] >= as_of)
    to_send = None
    if r[13] >= 1 and (r[17] is None or r[17] < r[13]) and not on_hold and not r[19]:
        to_send = "auto" if settings.policy(r[18]).level(r[13]).auto_send else "manual"
    return ScreenRow(
        customer_code=r[0], affiliate_code=r[1], customer_name=r[2], email=r[3],
        invoice_date=r[4], invoice_number=r[5], assignment=r[6], representative=r[7],
        total=r[8], remaining=r[9], due_date=r[10], payment_method=r[11],
        last_reminded_on=r[12], level=r[13], days_overdue=(as_of - r[10]).days,
        on_hold=on_hold, hold_reason=r[16] if on_hold else None, to_send=to_send,
        settlement=r[20],
    )


def _ordered(query: Any, sort: str, descending: bool) -> Any:
    column = SORTS.get(sort, SORTS[DEFAULT_SORT])
    order = [column.desc() if descending else column.asc()]
    if column is not Invoice.number:
        order.append(Invoice.number.desc() if descending else Invoice.number.asc())
    return query.order_by(None).order_by(*order)


async def all_rows(session: AsyncSession, settings: Any, *, as_of: dt.date,
                   wanted: TableFilter = TableFilter(), sort: str = DEFAULT_SORT,
                   descending: bool = False) -> list[ScreenRow]:
    """Every row of the table a filter shows, in its order (the CSV export)."""
    result = await session.execute(_ordered(_filtered(as_of, wanted), sort, descending))
    return [_row(r, as_of, settings) for r in result]


async def reminders_page(
    session: AsyncSession, settings: Any, *, as_of: dt.date, wanted: TableFilter = TableFilter(),
    sort: str = DEFAULT_SORT, descending: bool = False, page: int = 1, page_size: int = 50,
) -> TablePage:
    """One page of the reminders table, with the count and totals of every matching row.

    ``sort`` is a key of :data:`SORTS` (another falls back to the due date);
    a page past the last one shows the last.
    """
    query = _filtered(as_of, wanted)
    sub = query.order_by(None).subquery()
    count, total, remaining = (await session.execute(
        select(func.count(), func.sum(sub.c.total), func.sum(sub.c.remaining)))).one()
    pages = max(1, -(-count // page_size))
    page = min(max(page, 1), pages)
    result = await session.execute(
        _ordered(query, sort, descending).limit(page_size).offset((page - 1) * page_size))
    return TablePage(
        rows=[_row(r, as_of, settings) for r in result], count=count,
        total=total if total is not None else Decimal(0),  # the sum keeps the Money type
        remaining=remaining if remaining is not None else Decimal(0),
        page=page, pages=pages,
    )


async def open_invoices_of(session: AsyncSession, customer: Customer) -> Sequence[Invoice]:
    """Every invoice the customer still owes something on, due or not yet due, oldest due first."""
    return (await session.execute(
        select(Invoice).where(Invoice.customer_id == customer.id, open_invoices())
        .order_by(Invoice.due_date, Invoice.number))).scalars().all()


async def payments_of(session: AsyncSession, invoice: Invoice) -> Sequence[Payment]:
    """The payments recorded on an invoice, newest first."""
    return (await session.execute(
        select(Payment).where(Payment.invoice_id == invoice.id)
        .order_by(Payment.paid_on.desc(), Payment.id.desc()))).scalars().all()
