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
the caller's transaction; a dry run is the same call rolled back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import case, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from relances.daemon.config import Settings
from relances.daemon.errors import LedgerError
from relances.daemon.ledger.kinds import KIND_LABELS
from relances.daemon.ledger.readers import InvoiceRow
from relances.daemon.models import Customer, HistoryEntry, Invoice, Payment, utcnow

CHUNK = 500
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


@dataclass
class _Known:
    """An invoice as the book holds it, for comparison with a file's row."""

    id: int
    customer_id: int
    values: dict[str, Any]
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


def euros(value: Decimal) -> str:
    return f"{value:,.2f} €".replace(",", "\u202f").replace(".", ",")


def _shown(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, Decimal):
        return euros(value)
    if isinstance(value, dt.date):
        return f"{value:%d/%m/%Y}"
    return str(value)


async def _known_invoices(session: AsyncSession, numbers: Sequence[str], *,
                          whole_table: bool) -> dict[str, _Known]:
    cols = (Invoice.number, Invoice.id, Invoice.customer_id, Invoice.remaining, Invoice.level,
            Invoice.last_reminded_on, Invoice.reminded_here,
            *(getattr(Invoice, name) for name in _FIELDS))
    queries = [select(*cols)] if whole_table else [
        select(*cols).where(Invoice.number.in_(numbers[i:i + CHUNK]))
        for i in range(0, len(numbers), CHUNK)]
    known: dict[str, _Known] = {}
    for query in queries:
        for row in await session.execute(query):
            known[row[0]] = _Known(row[1], row[2], dict(zip(_FIELDS, row[7:], strict=True)),
                                   row[3], row[4], row[5], bool(row[6]))
    by_id = {k.id: k for k in known.values()}
    paid = await session.execute(
        select(Payment.invoice_id, func.sum(Payment.amount),
               func.sum(case((Payment.reflected.is_(False), Payment.amount), else_=0)))
        .group_by(Payment.invoice_id))
    for invoice_id, total, unreflected in paid:
        if invoice_id in by_id:
            by_id[invoice_id].paid_here = total or Decimal(0)
            by_id[invoice_id].unreflected = unreflected or Decimal(0)
    return known


async def _sync_customers(session: AsyncSession, settings: Settings, rows: Sequence[InvoiceRow],
                          *, source: str, user: str,
                          details: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """Create the customers a file names for the first time; take what it says of
    the others (an empty cell never erases a value).  Returns code → id."""
    wanted: dict[str, dict[str, Any]] = {}
    for row in rows:
        values = wanted.setdefault(row.customer_code, {})
        values.update({k: v for k, v in details.get(row.customer_code, {}).items() if v})
        if row.customer_name and row.customer_name != row.customer_code:
            values["name"] = row.customer_name
        for key, value in (("affiliate_code", row.affiliate_code), ("email", row.email),
                           ("kind", row.customer_kind), ("siren", row.customer_siren),
                           ("vat_number", row.customer_vat)):
            if value:
                values[key] = value
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
            "kind": values.get("kind", settings.customers.default_kind),
            **{k: v for k, v in values.items() if k not in {"name", "kind"}},
            "created_at": now, "updated_at": now}
           for code, values in wanted.items() if code not in found]
    changed, history = [], []
    for code, (customer_id, before) in found.items():
        diff = {k: v for k, v in wanted[code].items() if before[k] != v}
        if diff:
            changed.append({"id": customer_id, **diff, "updated_at": now})
        if "kind" in diff:
            history.append(_history(user, None, customer_id, "kind",
                                    f"Nature du client modifiée : {KIND_LABELS[before['kind']]} "
                                    f"→ {KIND_LABELS[diff['kind']]} ({source})"))
    if new:
        await session.execute(insert(Customer), _uniform(new))
    if changed:
        await session.execute(update(Customer), changed)
    if history:
        await session.execute(insert(HistoryEntry), history)
    ids = {code: customer_id for code, (customer_id, _) in found.items()}
    if new:
        for i in range(0, len(new), CHUNK):
            result = await session.execute(select(Customer.code, Customer.id).where(
                Customer.code.in_([c["code"] for c in new[i:i + CHUNK]])))
            ids.update({code: customer_id for code, customer_id in result})
    return ids


def _uniform(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same keys in every row, so one executemany takes them all."""
    keys = {key for row in rows for key in row}
    return [{key: row.get(key) for key in keys} for row in rows]


def _history(user: str, invoice_id: int | None, customer_id: int | None, event: str,
             action: str, *, level: int | None = None) -> dict[str, Any]:
    return {"at": utcnow(), "user": user, "invoice_id": invoice_id, "customer_id": customer_id,
            "event": event, "action": action[:300], "level": level, "channel": None,
            "reference": None}


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
    for name, label in _FIELDS.items():
        value = getattr(row, name)
        if name in _KEEP_WHEN_EMPTY and not value:
            continue
        if value != known.values[name]:
            changes[name] = value
            words.append(f"{label} {_shown(known.values[name])} → {_shown(value)}")
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
    plan.history.append(_history(user, known.id, customer_id, "imported", text))
    result.changes.append(f"{row.number}: " + ", ".join(words))


def _settle(known: _Known, reason: str, plan: _Plan, result: InvoiceImport, *, number: str,
            user: str) -> None:
    plan.updates.append({"id": known.id, "remaining": Decimal(0), "updated_at": utcnow()})
    plan.history.append(_history(user, known.id, known.customer_id, "settled", reason))
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
    numbers = [row.number for row in rows]
    known = await _known_invoices(session, numbers,
                                  whole_table=complete or len(rows) > WHOLE_TABLE_FROM)
    plan = _Plan()
    if complete:
        listed = set(numbers)
        open_here = {n: k for n, k in known.items() if k.remaining > 0}
        absent = {n: k for n, k in open_here.items() if n not in listed}
        if not force:
            _guard(settings, source=source, absent=len(absent), open_count=len(open_here))
        reason = absent_reason or \
            f"Soldée dans la gestion commerciale — absente de l'export {source}"
        for number, absentee in sorted(absent.items()):
            _settle(absentee, reason, plan, result, number=number, user=user)
    ids = await _sync_customers(session, settings, rows, source=source, user=user,
                                details=customer_details or {})
    result.customers = len({row.customer_code for row in rows})
    now = utcnow()
    reasons = settled_reasons or {}
    for row in rows:
        invoice = known.get(row.number)
        if invoice is None:
            if row.remaining <= 0 and not create_settled:
                result.skipped_settled += 1
                continue
            plan.inserts.append(_new_invoice(row, ids[row.customer_code], now,
                                             (labels or {}).get(row.number)))
            result.created += 1
        elif row.remaining <= 0 < invoice.remaining and row.number in reasons:
            _settle(invoice, f"{reasons[row.number]} ({source})", plan, result,
                    number=row.number, user=user)
        else:
            _plan_row(invoice, row, ids[row.customer_code], result, plan, source=source,
                      user=user, trust_file=trust_file)
    await _write(session, plan)
    return result


async def _write(session: AsyncSession, plan: _Plan) -> None:
    for i in range(0, len(plan.inserts), CHUNK):
        await session.execute(insert(Invoice), plan.inserts[i:i + CHUNK])
    for i in range(0, len(plan.updates), CHUNK):
        await session.execute(update(Invoice), plan.updates[i:i + CHUNK])
    for i in range(0, len(plan.history), CHUNK):
        await session.execute(insert(HistoryEntry), plan.history[i:i + CHUNK])
    for i in range(0, len(plan.reflect), CHUNK):
        await session.execute(
            update(Payment).where(Payment.invoice_id.in_(plan.reflect[i:i + CHUNK]),
                                  Payment.reflected.is_(False))
            .values(reflected=True).execution_options(synchronize_session=False))
