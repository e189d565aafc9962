"""A statement's entries into the ledger: each read once, matched, linked or set aside.

An entry already read (the same identity: the same statement twice, or two
statements that overlap) is skipped.  A debit is kept as such.  A credit is
matched (:mod:`relances.daemon.bank.matching`): each invoice it pays gets a
payment ("Règlement 680,40 € — virement du 30/11/2026, réf. …"), unless a
payment of that amount recorded by hand or from a payments file, for the
same invoice or customer and a few days apart (``bank.known_payment_days``),
is already there: then the entry is linked to it, not counted twice.  What
matches nothing certain waits for review, and the customers it may belong
to get no new reminder meanwhile (``bank.review_hold_days``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from relances.daemon.bank.known import KnownPayments
from relances.daemon.bank.matching import (
    Allocation,
    Book,
    Outcome,
    load_book,
    match,
    statement_invoices,
    statement_targets,
)
from relances.daemon.bank.statements import Entry, Statement
from relances.daemon.config import Settings
from relances.daemon.errors import BankError
from relances.daemon.ledger.book import payment_action, record_payment
from relances.daemon.ledger.bulk import bulk_insert, bulk_update, history_row, rows_in
from relances.daemon.models import BankEntry, BankStatement, Customer, HistoryEntry, Invoice, Payment, utcnow

CHUNK = 500
MATCH_ATTEMPTS = 3
_COUNTERS = {"matched": "matched", "known": "known", "review": "review", "debit": "debits"}


@dataclass
class BankImport:
    source: str
    entries: int = 0
    already: int = 0
    matched: int = 0
    known: int = 0
    review: int = 0
    debits: int = 0

    @property
    def new(self) -> int:
        return self.entries - self.already

    def __str__(self) -> str:
        return (f"{self.entries} entries: {self.new} new, {self.already} already read; "
                f"{self.matched} matched, {self.known} already recorded, {self.review} to "
                f"review, {self.debits} ignored (debits)")


def described(entry: Entry) -> str:
    """How a payment's history line says where it came from."""
    reference = entry.reference or entry.end_to_end_id or entry.bank_reference
    text = f"virement du {entry.booked_on:%d/%m/%Y}"
    if reference:
        text += f", réf. {reference}"
    if entry.counterparty:
        text += f", {entry.counterparty}"
    return text


async def _ids_of(session: AsyncSession, identities: list[str]) -> dict[str, int]:
    """The entries already read, by identity: their ids."""
    rows = await rows_in(session, select(BankEntry.identity, BankEntry.id), BankEntry.identity,
                         identities)
    return dict(rows)


async def record_allocations(session: AsyncSession, settings: Settings, row: BankEntry,
                             entry: Entry, allocations: list[Allocation], *,
                             user: str) -> bool:
    """Payments for what one entry pays (a match confirmed by hand); True when all of it
    was already recorded."""
    known = await KnownPayments.load(session, settings, [entry.booked_on])
    linked = 0
    for allocation in allocations:
        payment_id = known.for_invoice(allocation.invoice.id, allocation.amount, entry.booked_on)
        if payment_id is not None:
            payment = await session.get(Payment, payment_id)
            assert payment is not None
            payment.bank_entry_id = row.id
            linked += 1
            continue
        invoice = await session.get(Invoice, allocation.invoice.id, with_for_update=True)
        assert invoice is not None
        await record_payment(session, invoice, amount=allocation.amount, paid_on=entry.booked_on,
                             user=user, method="virement", described=described(entry),
                             bank_entry_id=row.id)
    return linked == len(allocations)


async def hold_candidates(session: AsyncSession, settings: Settings, customer_ids: set[int],
                          as_of: dt.date) -> None:
    """No new reminder, for a while, to customers a waiting entry may belong to."""
    days = settings.bank.review_hold_days
    if not days or not customer_ids:
        return
    until = as_of + dt.timedelta(days=days)
    ids = sorted(customer_ids)
    for i in range(0, len(ids), CHUNK):
        await session.execute(
            update(Customer).where(Customer.id.in_(ids[i:i + CHUNK]),
                                   (Customer.review_until.is_(None)) | (Customer.review_until < until))
            .values(review_until=until).execution_options(synchronize_session=False))


@dataclass
class _Plan:
    """What one fresh entry does, decided in memory before anything is written."""

    entry: Entry
    state: str = "debit"
    rule: str | None = None
    customer_id: int | None = None
    note: str | None = None
    candidates: str = ""
    pays: list[Allocation] = field(default_factory=list)  # new payments
    shows: list[int] = field(default_factory=list)  # recorded payments it links to

    def row(self, statement_id: int) -> dict[str, object]:
        e = self.entry
        return {"identity": e.identity, "statement_id": statement_id, "booked_on": e.booked_on,
                "value_date": e.value_date, "amount": e.amount, "currency": e.currency,
                "counterparty": e.counterparty[:200], "counterparty_iban": e.counterparty_iban,
                "reference": (e.reference or None) and e.reference[:140], "text": e.text,
                "bank_reference": (e.bank_reference or None) and e.bank_reference[:140],
                "state": self.state, "rule": self.rule, "note": self.note,
                "customer_id": self.customer_id, "candidates": self.candidates,
                "resolved_at": None, "resolved_by": None}


def _plan(entry: Entry, book: Book, statements: dict[tuple[int, dt.date], list[str]],
          known: KnownPayments) -> _Plan:
    plan = _Plan(entry)
    if not entry.is_credit:
        return plan
    outcome: Outcome = match(entry, book, statements)
    if outcome.matched:
        plan.rule = outcome.rule
        plan.customer_id = outcome.allocations[0].invoice.customer_id
        for allocation in outcome.allocations:
            payment_id = known.for_invoice(allocation.invoice.id, allocation.amount, entry.booked_on)
            if payment_id is None:
                plan.pays.append(allocation)
            else:
                plan.shows.append(payment_id)
            book.settle(allocation)
        plan.state = "matched" if plan.pays else "known"
        return plan
    payment_id = known.shown(entry, outcome.candidates)
    if payment_id is not None:
        plan.state, plan.rule, plan.shows = "known", "known", [payment_id]
        return plan
    plan.state, plan.note = "review", outcome.reason
    plan.candidates = ",".join(str(c) for c in sorted(outcome.candidates))
    return plan


async def _still_as_read(session: AsyncSession, plans: list[_Plan]) -> bool:
    """Lock the invoices the plans pay and say whether they still owe what the book read."""
    read: dict[int, Decimal] = {}
    for plan in plans:
        for allocation in plan.pays:
            read.setdefault(allocation.invoice.id, allocation.invoice.remaining)
    rows = await rows_in(session, select(Invoice.id, Invoice.remaining).with_for_update(),
                         Invoice.id, sorted(read))
    return all(read[invoice_id] == remaining for invoice_id, remaining in rows)


async def _write(session: AsyncSession, statement_id: int, plans: list[_Plan], *, user: str) -> None:
    """The entries, their payments and links, the invoices' new remaining and the history."""
    await bulk_insert(session, BankEntry, [plan.row(statement_id) for plan in plans])
    # The statement's own rows are exactly those just written: one query, not one per chunk.
    written = await session.execute(select(BankEntry.identity, BankEntry.id)
                                    .where(BankEntry.statement_id == statement_id))
    ids_of: dict[str, int] = dict(written.all())
    ids = [ids_of[plan.entry.identity] for plan in plans]
    payments, links, history = [], [], []
    left: dict[int, Decimal] = {}
    now = utcnow()
    for plan, entry_id in zip(plans, ids, strict=True):
        links += [{"id": p, "bank_entry_id": entry_id} for p in plan.shows]
        for allocation in plan.pays:
            invoice = allocation.invoice
            remaining = left.get(invoice.id, invoice.remaining) - allocation.amount
            left[invoice.id] = remaining
            day = plan.entry.booked_on
            payments.append({"invoice_id": invoice.id, "paid_on": day, "amount": allocation.amount,
                             "method": "virement", "reference": "", "reflected": False,
                             "bank_entry_id": entry_id, "recorded_at": now, "recorded_by": user})
            history.append(history_row(user, invoice.id, invoice.customer_id, "paid", payment_action(
                allocation.amount, remaining, day, described(plan.entry))))
    await bulk_insert(session, Payment, payments)
    await bulk_update(session, Payment, links)
    await bulk_update(session, Invoice, [{"id": k, "remaining": v, "updated_at": now}
                                         for k, v in left.items()])
    await bulk_insert(session, HistoryEntry, history)


async def import_statement(session: AsyncSession, settings: Settings, statement: Statement, *,
                           user: str, as_of: dt.date | None = None) -> BankImport:
    """Apply a statement to the ledger, in the caller's transaction.

    Every entry is decided in memory against the book of open invoices, then
    everything is written in bulk; the invoices it pays are locked first, and
    should one have changed since the book was read (a payment recorded
    meanwhile), the statement is matched again against the new book.
    """
    result = BankImport(statement.source, entries=len(statement.entries))
    read = await _ids_of(session, [e.identity for e in statement.entries])
    fresh = [e for e in statement.entries if e.identity not in read]
    result.already = len(statement.entries) - len(fresh)
    record = BankStatement(source=statement.source[:300], format=statement.format,
                           account_iban=statement.account_iban,
                           statement_ref=(statement.statement_id or None),
                           date=statement.date, entries=len(fresh), read_by=user)
    session.add(record)
    await session.flush()
    targets = set().union(*(statement_targets(e) for e in fresh)) if fresh else set()
    statements = {key: await statement_invoices(session, key[0], key[1], settings.zone)
                  for key in targets}
    for _attempt in range(MATCH_ATTEMPTS):
        book = await load_book(session)
        known = await KnownPayments.load(session, settings, [e.booked_on for e in fresh if e.is_credit])
        plans = [_plan(entry, book, statements, known) for entry in fresh]
        if await _still_as_read(session, plans):
            break
    else:
        raise BankError(f"{statement.source}: the invoices it pays kept changing while it was "
                        "applied; nothing was written: import it again")
    await _write(session, record.id, plans, user=user)
    held: set[int] = set()
    for plan in plans:
        counter = _COUNTERS[plan.state]
        setattr(result, counter, getattr(result, counter) + 1)
        held.update(int(c) for c in plan.candidates.split(",") if c)
    await hold_candidates(session, settings, held, as_of or settings.today())
    await session.flush()
    return result
