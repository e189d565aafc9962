"""The reminders table: unpaid invoices whose due date has passed.

This is the seed's "Relances" screen.  Paid invoices (nothing remaining)
and invoices not yet due never appear.  Rows come oldest due date first,
which is also the order the partial index on open invoices serves, so the
first page of a million-invoice ledger is read without sorting it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import IO, Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from relances.daemon import formatting as fmt
from relances.daemon.ledger.due import open_invoices
from relances.daemon.models import Customer, Invoice


@dataclass(frozen=True)
class ReminderRow:
    customer_code: str
    affiliate_code: str | None
    customer_name: str
    email: str | None
    invoice_date: dt.date
    invoice_number: str
    assignment: str | None
    representative: str | None
    total: Decimal
    remaining: Decimal
    due_date: dt.date
    payment_method: str | None
    last_reminded_on: dt.date | None
    level: int
    days_overdue: int
    on_hold: bool
    hold_reason: str | None
    # The reminder due at the invoice's level, not sent yet: "auto" leaves on
    # the daemon's schedule, "manual" waits for a person (`relances send`).
    to_send: str | None = None

    def as_json(self) -> dict[str, Any]:
        """Amounts as strings with a dot, dates ISO or null."""
        out: dict[str, Any] = {}
        # Not dataclasses.asdict: it deep-copies every value, half the cost of `list --format json`.
        for key in _FIELDS:
            value = getattr(self, key)
            if isinstance(value, Decimal):
                value = f"{value:.2f}"
            elif isinstance(value, dt.date):
                value = value.isoformat()
            out[key] = value
        return out


_FIELDS = tuple(ReminderRow.__dataclass_fields__)


def reminders_query(*, as_of: dt.date, customer: str | None = None,
                    level: int | None = None) -> Select[Any]:
    query = (
        select(
            Customer.code, Customer.affiliate_code, Customer.name, Customer.email,
            Invoice.invoice_date, Invoice.number, Invoice.assignment, Invoice.representative,
            Invoice.total, Invoice.remaining, Invoice.due_date, Invoice.payment_method,
            Invoice.last_reminded_on, Invoice.level, Invoice.on_hold, Invoice.hold_until,
            Invoice.hold_reason, Invoice.last_reminded_level, Customer.policy, Customer.opted_out,
        )
        .join(Customer, Customer.id == Invoice.customer_id)
        .where(open_invoices(), Invoice.due_date < as_of)
    )
    if customer is not None:
        query = query.where(Customer.code == customer)
    if level is not None:
        query = query.where(Invoice.level == level)
    return query.order_by(Invoice.due_date, Invoice.number)


async def reminders_table(
    session: AsyncSession, settings: Any = None, *, as_of: dt.date,
    customer: str | None = None, level: int | None = None,
    limit: int | None = None, offset: int = 0,
) -> list[ReminderRow]:
    """The rows of the reminders table as of a business date."""
    query = reminders_query(as_of=as_of, customer=customer, level=level)
    if limit is not None:
        query = query.limit(limit)
    if offset:
        query = query.offset(offset)
    result = await session.execute(query)
    rows = []
    for r in result:
        on_hold = bool(r[14]) and (r[15] is None or r[15] >= as_of)
        to_send = None
        if r[13] >= 1 and (r[17] is None or r[17] < r[13]) and not on_hold and not r[19] \
                and settings is not None:
            to_send = "auto" if settings.policy(r[18]).level(r[13]).auto_send else "manual"
        rows.append(ReminderRow(
            customer_code=r[0], affiliate_code=r[1], customer_name=r[2], email=r[3],
            invoice_date=r[4], invoice_number=r[5], assignment=r[6], representative=r[7],
            total=r[8], remaining=r[9], due_date=r[10], payment_method=r[11],
            last_reminded_on=r[12], level=r[13], days_overdue=(as_of - r[10]).days,
            on_hold=on_hold, hold_reason=r[16] if on_hold else None, to_send=to_send,
        ))
    return rows


CSV_FIELDS = tuple(f.name for f in dataclasses.fields(ReminderRow))
# The French CSV's header: the screen's names, for the columns it has.
CSV_HEADERS = tuple({
    "customer_code": "Code", "affiliate_code": "Affilié", "customer_name": "Nom",
    "email": "email", "invoice_date": "Date Fac.", "invoice_number": "N° Fac.",
    "assignment": "Affect.", "representative": "Repr.", "total": "Total Fac.",
    "remaining": "Reste", "due_date": "Échéance", "payment_method": "Ech.",
    "last_reminded_on": "Relancé le", "level": "N", "days_overdue": "Retard (jours)",
    "on_hold": "Litige", "hold_reason": "Motif du litige", "to_send": "À envoyer",
}[name] for name in CSV_FIELDS)
CENTS = Decimal("0.01")


def csv_cells(row: ReminderRow) -> list[Any]:
    """The JSON output's values with their types kept (amounts as numbers, to the
    cent), for :func:`~relances.daemon.formatting.write_csv` to tell text from numbers."""
    values = [getattr(row, name) for name in CSV_FIELDS]
    return [v.quantize(CENTS) if isinstance(v, Decimal) else v for v in values]


def write_rows_csv(out: IO[str], rows: Iterable[ReminderRow], *, french: bool = True) -> None:
    """The reminders table as CSV: for a French spreadsheet, or in the ``csv-en`` form."""
    fmt.write_csv(out, CSV_HEADERS if french else CSV_FIELDS, (csv_cells(r) for r in rows),
                  french=french)
