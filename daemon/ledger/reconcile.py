"""Following the seller's books: what an export, the FEC or an e-invoice changes.

The books are the truth about what is owed; Relances is the truth about
what it did.  Applying a source's invoice rows to the book:

- a new invoice is created (from the FEC, only an open one);
- an existing one takes what the books changed (total, due date, customer,
  and the other columns) and writes one history line with the old and the
  new values and the source's name; an unchanged row writes nothing;
- what remains due follows the books, except that a payment recorded here
  is never undone: while one is not reflected in the books, the invoice
  keeps the lower of the file's Reste and its own balance (counted as
  *stale*); a payment is reflected once a file shows a Reste at or below the
  total minus the payments recorded here; a higher Reste over a payment
  recorded here is reported and left alone unless the caller trusts the
  file;
- an export's level and "Relancé le" apply only to invoices that Relances
  never reminded itself, never lower a level nor replace a later date;
- a complete source settles the open invoices it no longer lists, unless
  that would settle more than the guard allows (a truncated file).

Everything is read in a few queries and written in bulk statements, in
the caller's transaction; a dry run is the same call rolled back.  An
export (:class:`~relances.daemon.ledger.readers.InvoiceRows`) is never held
whole: its rows meet the book's invoices a batch at a time and new invoices
are written as they come, so a long export takes no more memory than a
short one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import groupby
from typing import Any

from sqlalchemy import bindparam, case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from relances.daemon.config import Settings
from relances.daemon.errors import LedgerError
from relances.daemon.ledger.book import euros
from relances.daemon.ledger.bulk import BULK, CHUNK, bulk_insert, history_row
from relances.daemon.ledger.customers import sync_customers, wanted_customers
from relances.daemon.ledger.readers import InvoiceRow
from relances.daemon.ledger.rowstore import InvoiceRows
from relances.daemon.models import HistoryEntry, Invoice, Payment, utcnow

WHOLE_TABLE_FROM = 2000  # rows: above this, read every invoice in one query
SHOWN = 10

# Columns compared and copied from the file, with their French names for the history.
_FIELDS = {"total": "Total Fac.", "due_date": "Échéance", "invoice_date": "Date Fac.",
           "payment_method": "Ech.", "settlement": "Rglmt.", "assignment": "Affect.",
           "representative": "Repr.", "pdf_path": "PDF"}
_KEEP_WHEN_EMPTY = frozenset({"payment_method", "settlement", "assignment", "representative",
                              "pdf_path"})


@dataclass
class InvoiceImport:
    """What an import of invoices did (or, in a dry run, would do)."""

    source: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    customers: int = 0
    settled: int = 0
    stale: int = 0
    higher: list[str] = field(default_factory=list)  # a higher Reste not applied
    trusted: int = 0
    skipped_settled: int = 0
    changes: list[str] = field(default_factory=list)  # "NUMBER: what changed"

    @property
    def rows(self) -> int:
        return self.created + self.updated + self.unchanged

    def __str__(self) -> str:
        text = (f"{self.rows} rows: {self.created} new, {self.updated} updated, "
                f"{self.unchanged} unchanged; {self.customers} customers")
        if self.settled:
            text += f"; {self.settled} settled in the books"
        if self.stale:
            text += (f"; {self.stale} kept the lower balance (a payment recorded here is "
                     "not in the file yet)")
        if self.higher:
            shown = ", ".join(self.higher[:SHOWN]) + (" …" if len(self.higher) > SHOWN else "")
            text += (f"; {len(self.higher)} higher Reste not applied, a payment being "
                     f"recorded here ({shown}): --trust-file applies them")
        if self.trusted:
            text += f"; {self.trusted} higher Reste applied (--trust-file)"
        return text


@dataclass(slots=True)
class _Known:
    """An invoice as the book holds it, for comparison with a file's row."""

    id: int
    customer_id: int
    values: tuple[Any, ...]  # the columns of _FIELDS, in their order
    remaining: Decimal
    level: int
    last_reminded_on: dt.date | None
    reminded_here: bool
    paid_here: Decimal = Decimal(0)
    unreflected: Decimal = Decimal(0)


@dataclass
class _Plan:
    inserts: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    reflect: list[int] = field(default_factory=list)


def _shown(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, Decimal):
        return euros(value)
    if isinstance(value, dt.date):
        return f"{value:%d/%m/%Y}"
    return str(value)


@dataclass
class _Book:
    """Invoices of the book as read, by number, and what was paid here, by invoice id.

    An invoice is kept as its row (number, id, customer_id, remaining, level,
    last_reminded_on, reminded_here, then the columns of _FIELDS) and becomes a
    :class:`_Known` only where a source's row may change it.
    """

    rows: dict[str, Any] = field(default_factory=dict)
    paid: dict[int, tuple[Decimal, Decimal]] = field(default_factory=dict)

    def known(self, row: Any) -> _Known:
        return _Known(row[1], row[2], row[7:], row[3], row[4], row[5], bool(row[6]),
                      *self.paid.get(row[1], _NOTHING_PAID))


async def _known_invoices(session: AsyncSession, numbers: Sequence[str], *,
                          whole_table: bool, payments: bool = True) -> _Book:
    """The book's invoices of these numbers (or all of them), with what was paid here
    (``payments``: there may be payments at all).

    Core statements on the tables, not ORM ones: the same rows and values, without
    the ORM's cost per row (nor its autoflush: :func:`apply_invoices` flushes first).
    """
    table = Invoice.__table__.c
    cols = (table.number, table.id, table.customer_id, table.remaining, table.level,
            table.last_reminded_on, table.reminded_here, *(table[name] for name in _FIELDS))
    if whole_table:
        results = [await session.execute(select(*cols))]
    else:
        query = select(*cols).where(table.number.in_(bindparam("numbers", expanding=True)))
        results = [await session.execute(query, {"numbers": numbers[i:i + CHUNK]})
                   for i in range(0, len(numbers), CHUNK)]
    book = _Book()
    for result in results:
        book.rows.update((row[0], tuple(row)) for row in result.all())
    del results
    by_id = {row[1] for row in book.rows.values()}
    pay = Payment.__table__.c
    paid = select(pay.invoice_id, func.sum(pay.amount),
                  func.sum(case((pay.reflected.is_(False), pay.amount), else_=0)))
    ids = list(by_id) if payments else []
    if whole_table:
        results = [await session.execute(paid.group_by(pay.invoice_id))]
    else:
        query = paid.where(pay.invoice_id.in_(bindparam("ids", expanding=True))) \
            .group_by(pay.invoice_id)
        results = [await session.execute(query, {"ids": ids[i:i + CHUNK]})
                   for i in range(0, len(ids), CHUNK)]
    for result in results:
        for invoice_id, total, unreflected in result.all():
            if invoice_id in by_id:
                book.paid[invoice_id] = (total or Decimal(0), unreflected or Decimal(0))
    return book


def _remaining(known: _Known, row: InvoiceRow, result: InvoiceImport, *,
               trust_file: bool) -> tuple[Decimal, bool]:
    """What remains due after this row, and whether the payments recorded here are
    now reflected in the books."""
    wanted = row.remaining
    caught_up = known.unreflected > 0 and wanted <= row.total - known.paid_here
    if wanted <= known.remaining or known.paid_here == 0:
        return wanted, caught_up  # a lower Reste is always taken
    if trust_file:
        result.trusted += 1
        return wanted, known.unreflected > 0
    if known.unreflected > 0 and not caught_up:
        result.stale += 1  # the books do not know the payment yet
    else:
        result.higher.append(row.number)  # a payment reversed in the books, say
    return known.remaining, False


def _new_invoice(row: InvoiceRow, customer_id: int, now: dt.datetime,
                 label: str | None) -> dict[str, Any]:
    return {"label": label,
        "number": row.number, "customer_id": customer_id, "invoice_date": row.invoice_date,
        "due_date": row.due_date, "total": row.total, "remaining": row.remaining,
        "payment_method": row.payment_method, "settlement": row.settlement,
        "assignment": row.assignment, "representative": row.representative,
        "level": row.level, "last_reminded_on": row.last_reminded_on,
        "last_reminded_level": row.level if row.last_reminded_on else None,
        "pdf_path": row.pdf_path, "reminded_here": False, "created_at": now, "updated_at": now,
    }


def _levels(known: _Known, row: InvoiceRow) -> dict[str, Any]:
    """The export's level and reminder date, where they may apply."""
    if known.reminded_here:
        return {}  # Relances' own record wins
    changes: dict[str, Any] = {}
    if row.level > known.level:
        changes["level"] = row.level
    if row.last_reminded_on and (known.last_reminded_on is None
                                 or row.last_reminded_on > known.last_reminded_on):
        changes["last_reminded_on"] = row.last_reminded_on
        changes["last_reminded_level"] = max(row.level, known.level)
    return changes


def _unchanged(book: _Book, known: Any, row: InvoiceRow, customer_id: int) -> bool:
    """The row changes nothing, payments and levels included: what :func:`_plan_row`
    finds of the book's ``known`` row for most rows of a re-import, told at a
    fraction of its cost.  False says nothing: :func:`_plan_row` decides."""
    return (customer_id == known[2] and row.remaining == known[3]
            and book.paid.get(known[1], _NOTHING_PAID)[1] == 0
            and (row.total, row.due_date, row.invoice_date, row.payment_method, row.settlement,
                 row.assignment, row.representative, row.pdf_path) == known[7:]
            and (known[6] or (
                row.level <= known[4]
                and (row.last_reminded_on is None or (
                    known[5] is not None and row.last_reminded_on <= known[5])))))


_NOTHING_PAID = (Decimal(0), Decimal(0))


def _plan_row(known: _Known, row: InvoiceRow, customer_id: int, result: InvoiceImport,
              plan: _Plan, *, source: str, user: str, trust_file: bool) -> None:
    changes: dict[str, Any] = {}
    words: list[str] = []
    if customer_id != known.customer_id:
        changes["customer_id"] = customer_id
        words.append(f"client changé ({row.customer_code})")
    remaining, reflected = _remaining(known, row, result, trust_file=trust_file)
    if remaining != known.remaining:
        changes["remaining"] = remaining
        words.append(f"Reste {_shown(known.remaining)} → {_shown(remaining)}")
    if reflected:
        plan.reflect.append(known.id)
    for (name, label), before in zip(_FIELDS.items(), known.values, strict=True):
        value = getattr(row, name)
        if name in _KEEP_WHEN_EMPTY and not value:
            continue
        if value != before:
            changes[name] = value
            words.append(f"{label} {_shown(before)} → {_shown(value)}")
    levels = _levels(known, row)
    if "level" in levels:
        words.append(f"niveau {known.level} → {levels['level']}")
    if "last_reminded_on" in levels:
        words.append(f"Relancé le {_shown(known.last_reminded_on)} → "
                     f"{_shown(levels['last_reminded_on'])}")
    changes.update(levels)
    if not changes:
        result.unchanged += 1
        return
    result.updated += 1
    plan.updates.append({"id": known.id, **changes, "updated_at": utcnow()})
    text = f"Import {source} : " + ", ".join(words)
    plan.history.append(history_row(user, known.id, customer_id, "imported", text))
    result.changes.append(f"{row.number}: " + ", ".join(words))


def _settle(known: _Known, reason: str, plan: _Plan, result: InvoiceImport, *, number: str,
            user: str) -> None:
    plan.updates.append({"id": known.id, "remaining": Decimal(0), "updated_at": utcnow()})
    plan.history.append(history_row(user, known.id, known.customer_id, "settled", reason))
    result.settled += 1
    result.changes.append(f"{number}: {reason} (reste {_shown(known.remaining)})")


def _guard(settings: Settings, *, source: str, absent: int, open_count: int) -> None:
    guard = settings.imports.complete_guard
    if absent >= guard.minimum and absent > guard.share * open_count:
        raise LedgerError(
            f"{source}: refused: as a complete list of open invoices, it would settle "
            f"{absent} of the {open_count} open invoices ({100 * absent / open_count:.0f} %, "
            f"more than {100 * guard.share:.0f} %); if the file is whole, give --force")


async def apply_invoices(
    session: AsyncSession, settings: Settings, rows: Sequence[InvoiceRow], *, source: str,
    user: str, complete: bool = False, force: bool = False, trust_file: bool = False,
    settled_reasons: Mapping[str, str] | None = None, absent_reason: str | None = None,
    customer_details: Mapping[str, Mapping[str, Any]] | None = None,
    create_settled: bool = True, labels: Mapping[str, str] | None = None,
) -> InvoiceImport:
    """Bring the book in line with a source's invoices, in the caller's transaction.

    ``complete``: the source lists every open invoice, so an open invoice it
    does not list is settled, with ``absent_reason`` in its history.
    ``settled_reasons``: why the source shows an invoice as settled.
    ``customer_details``: more of each customer's columns (an e-invoice's
    buyer address), by customer code.  ``create_settled``: create an invoice
    the source shows as already settled (not from a FEC, whose years of paid
    invoices have nothing to chase).  ``labels``: what the source calls an
    item that is not one invoice, by number.
    """
    result = InvoiceImport(source)
    if session.sync_session.autoflush:  # as the ORM queries this replaced did
        await session.flush()
    # An export's rows (numbers unique, checked as it was read) meet the book a batch
    # at a time, so that neither the rows nor the book's invoices are all in memory;
    # other sources' rows are in memory already, and a complete source needs the
    # whole book to find what it no longer lists.
    parts: Iterable[tuple[list[str], Iterable[InvoiceRow]]] = [([], rows)]
    streamed = False
    if isinstance(rows, InvoiceRows) and not complete:
        streamed, parts = True, rows.parts()
        book = _Book()
        book_empty = (await session.execute(select(Invoice.id).limit(1))).first() is None
        payments = (await session.execute(select(Payment.id).limit(1))).first() is not None
    else:
        whole_table = complete or len(rows) > WHOLE_TABLE_FROM
        book = await _known_invoices(session, [] if whole_table else [row.number for row in rows],
                                     whole_table=whole_table)
    plan = _Plan()
    listed: set[str] | None = set() if complete else None
    wanted = wanted_customers(rows, customer_details or {}, listed)
    if listed is not None:
        open_here = {n: k for n, k in book.rows.items() if k[3] > 0}
        absent = {n: book.known(k) for n, k in open_here.items() if n not in listed}
        if not force:
            _guard(settings, source=source, absent=len(absent), open_count=len(open_here))
        reason = absent_reason or \
            f"Soldée dans la gestion commerciale — absente de l'export {source}"
        for number, absentee in sorted(absent.items()):
            _settle(absentee, reason, plan, result, number=number, user=user)
    ids = await sync_customers(session, settings, wanted, source=source, user=user)
    result.customers = len(wanted)
    del wanted
    now = utcnow()
    reasons = settled_reasons or {}
    labels = labels or {}
    for numbers, part in parts:
        if streamed and not book_empty:
            book = await _known_invoices(session, numbers, whole_table=False, payments=payments)
        await _apply_part(session, part, book, ids, plan, result, now=now, reasons=reasons,
                          labels=labels, source=source, user=user, trust_file=trust_file,
                          create_settled=create_settled)
    await _write(session, plan)
    return result


async def _apply_part(session: AsyncSession, rows: Iterable[InvoiceRow], book: _Book,
                      ids: Mapping[str, int], plan: _Plan, result: InvoiceImport, *,
                      now: dt.datetime, reasons: Mapping[str, str], labels: Mapping[str, str],
                      source: str, user: str, trust_file: bool, create_settled: bool) -> None:
    known = book.rows
    for row in rows:
        invoice = known.get(row.number)
        if invoice is None:
            if row.remaining <= 0 and not create_settled:
                result.skipped_settled += 1
                continue
            plan.inserts.append(_new_invoice(row, ids[row.customer_code], now,
                                             labels.get(row.number)))
            result.created += 1
            if len(plan.inserts) == BULK:  # written as they come: memory stays flat
                await bulk_insert(session, Invoice, plan.inserts)
                plan.inserts.clear()
        elif row.remaining <= 0 < invoice[3] and row.number in reasons:
            _settle(book.known(invoice), f"{reasons[row.number]} ({source})", plan, result,
                    number=row.number, user=user)
        elif _unchanged(book, invoice, row, customer_id := ids[row.customer_code]):
            result.unchanged += 1
        else:
            _plan_row(book.known(invoice), row, customer_id, result, plan, source=source,
                      user=user, trust_file=trust_file)


async def _write(session: AsyncSession, plan: _Plan) -> None:
    await bulk_insert(session, Invoice, plan.inserts)
    updates = plan.updates
    if len({u["id"] for u in updates}) == len(updates):
        # One statement per set of columns changed, rather than one per run of rows
        # in the plan's order (the ORM's grouping); the order does not matter when
        # no invoice is updated twice.
        updates = sorted(updates, key=lambda u: sorted(u))
    for _, same in groupby(updates, key=lambda u: sorted(u)):
        batch = list(same)
        for i in range(0, len(batch), CHUNK):
            await session.execute(update(Invoice), batch[i:i + CHUNK])
    await bulk_insert(session, HistoryEntry, plan.history)
    for i in range(0, len(plan.reflect), CHUNK):
        await session.execute(
            update(Payment).where(Payment.invoice_id.in_(plan.reflect[i:i + CHUNK]),
                                  Payment.reflected.is_(False))
            .values(reflected=True).execution_options(synchronize_session=False))
