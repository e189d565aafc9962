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
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from relances.daemon.bank.matching import (
    Allocation,
    Book,
    Outcome,
    load_book,
    match,
    named_keys,
    number_key,
    quoted_references,
    statement_invoices,
    statement_targets,
)
from relances.daemon.bank.statements import Entry, Statement
from relances.daemon.config import Settings
from relances.daemon.ledger.book import record_payment
from relances.daemon.ledger.references import decode_reference
from relances.daemon.models import BankEntry, BankStatement, Customer, Invoice, Payment

CHUNK = 500
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


async def _already_read(session: AsyncSession, identities: list[str]) -> set[str]:
    found: set[str] = set()
    for i in range(0, len(identities), CHUNK):
        found.update((await session.execute(select(BankEntry.identity).where(
            BankEntry.identity.in_(identities[i:i + CHUNK])))).scalars())
    return found


async def known_payment(session: AsyncSession, settings: Settings, *, amount: object,
                        on: dt.date, invoice_ids: Iterable[int] = (),
                        customer_ids: Iterable[int] = ()) -> Payment | None:
    """A payment recorded here of that amount, not yet shown by any bank entry,
    for one of these invoices or customers, a few days from ``on``."""
    days = dt.timedelta(days=settings.bank.known_payment_days)
    targets = [Payment.invoice_id.in_(list(invoice_ids))]
    customers = list(customer_ids)
    if customers:
        targets.append(Payment.invoice_id.in_(
            select(Invoice.id).where(Invoice.customer_id.in_(customers))))
    for target in targets:
        payment = await session.scalar(
            select(Payment).where(target, Payment.bank_entry_id.is_(None),
                                  Payment.amount == amount,
                                  Payment.paid_on.between(on - days, on + days))
            .order_by(Payment.paid_on, Payment.id).limit(1))
        if payment is not None:
            return payment
    return None


async def _shown_payment(session: AsyncSession, settings: Settings, entry: Entry,
                         customers: set[int]) -> Payment | None:
    """A payment recorded here that this entry shows, though it matched no open
    invoice: same amount, a few days apart, naming its invoice (by number or
    creditor reference) or from one of the customers it may belong to (the
    invoice it paid is no longer open: paid by hand, or settled by the books)."""
    days = dt.timedelta(days=settings.bank.known_payment_days)
    rows = await session.execute(
        select(Payment, Invoice.number, Invoice.customer_id)
        .join(Invoice, Invoice.id == Payment.invoice_id)
        .where(Payment.bank_entry_id.is_(None), Payment.amount == entry.amount,
               Payment.paid_on.between(entry.booked_on - days, entry.booked_on + days))
        .order_by(Payment.paid_on, Payment.id))
    named = set(named_keys(f"{entry.reference or ''} {entry.text}"))
    ids: set[int] = set()
    for reference in quoted_references(entry):
        target = decode_reference(reference)
        if target is not None and target[0] == "number":
            named.add(number_key(str(target[1])))
        elif target is not None and target[0] == "id":
            ids.add(int(str(target[1])))
    for payment, number, customer_id in rows:
        if number_key(number) in named or payment.invoice_id in ids or customer_id in customers:
            return payment
    return None


async def record_allocations(session: AsyncSession, settings: Settings, row: BankEntry,
                             entry: Entry, allocations: list[Allocation], *,
                             user: str) -> bool:
    """Payments for what the entry pays; True when all of it was already recorded."""
    linked = 0
    for allocation in allocations:
        payment = await known_payment(session, settings, amount=allocation.amount,
                                      on=entry.booked_on, invoice_ids=[allocation.invoice.id])
        if payment is not None:
            payment.bank_entry_id = row.id
            linked += 1
            continue
        invoice = await session.get(Invoice, allocation.invoice.id, with_for_update=True)
        assert invoice is not None
        await record_payment(session, invoice, amount=allocation.amount, paid_on=entry.booked_on,
                             user=user, method="virement", described=described(entry),
                             bank_entry_id=row.id)
    return linked == len(allocations)


def _row(entry: Entry, statement_id: int) -> BankEntry:
    return BankEntry(
        identity=entry.identity, statement_id=statement_id, booked_on=entry.booked_on,
        value_date=entry.value_date, amount=entry.amount, currency=entry.currency,
        counterparty=entry.counterparty[:200], counterparty_iban=entry.counterparty_iban,
        reference=(entry.reference or None) and entry.reference[:140], text=entry.text,
        bank_reference=(entry.bank_reference or None) and entry.bank_reference[:140],
        state="debit")


async def _one(session: AsyncSession, settings: Settings, entry: Entry, row: BankEntry,
               book: Book, statements: dict[tuple[int, dt.date], list[str]], *,
               user: str) -> str:
    """Match one credit; returns its state."""
    outcome: Outcome = match(entry, book, statements)
    if outcome.matched:
        row.rule = outcome.rule
        row.customer_id = outcome.allocations[0].invoice.customer_id
        all_known = await record_allocations(session, settings, row, entry, outcome.allocations,
                                             user=user)
        for allocation in outcome.allocations:
            book.settle(allocation)
        return "known" if all_known else "matched"
    payment = await _shown_payment(session, settings, entry, outcome.candidates)
    if payment is not None:
        payment.bank_entry_id = row.id
        row.rule = "known"
        return "known"
    row.note = outcome.reason
    row.candidates = ",".join(str(c) for c in sorted(outcome.candidates))
    return "review"


async def hold_candidates(session: AsyncSession, settings: Settings, customer_ids: set[int],
                          as_of: dt.date) -> None:
    """No new reminder, for a while, to customers a waiting entry may belong to."""
    days = settings.bank.review_hold_days
    if not days or not customer_ids:
        return
    until = as_of + dt.timedelta(days=days)
    await session.execute(
        update(Customer).where(Customer.id.in_(sorted(customer_ids)),
                               (Customer.review_until.is_(None)) | (Customer.review_until < until))
        .values(review_until=until).execution_options(synchronize_session=False))


async def import_statement(session: AsyncSession, settings: Settings, statement: Statement, *,
                           user: str, as_of: dt.date | None = None) -> BankImport:
    """Apply a statement to the ledger, in the caller's transaction."""
    result = BankImport(statement.source, entries=len(statement.entries))
    read = await _already_read(session, [e.identity for e in statement.entries])
    fresh = [e for e in statement.entries if e.identity not in read]
    result.already = len(statement.entries) - len(fresh)
    record = BankStatement(source=statement.source[:300], format=statement.format,
                           account_iban=statement.account_iban,
                           statement_ref=(statement.statement_id or None),
                           date=statement.date, entries=len(fresh), read_by=user)
    session.add(record)
    await session.flush()
    book = await load_book(session)
    targets = set().union(*(statement_targets(e) for e in fresh)) if fresh else set()
    statements = {key: await statement_invoices(session, key[0], key[1], settings.zone)
                  for key in targets}
    held: set[int] = set()
    for entry in fresh:
        row = _row(entry, record.id)
        session.add(row)
        await session.flush()
        if entry.is_credit:
            row.state = await _one(session, settings, entry, row, book, statements, user=user)
        counter = _COUNTERS[row.state]
        setattr(result, counter, getattr(result, counter) + 1)
        if row.state == "review":
            held.update(int(c) for c in row.candidates.split(",") if c)
    await hold_candidates(session, settings, held, as_of or settings.today())
    await session.flush()
    return result
