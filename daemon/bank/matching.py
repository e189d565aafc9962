"""Which invoices a bank credit pays, the most certain rule first.

1. ``reference``: a creditor reference (ISO 11649 ``RF…``, check digits
   verified), structured or inside the free text, that Relances printed on
   an invoice or a statement; or a structured reference that is an invoice
   number.
2. ``number``: invoice numbers named in the remittance text, as whole
   tokens of at least four characters (case, spaces and dashes inside the
   number ignored), so that a number inside a SIRET or a date settles
   nothing.  A payment naming several invoices is split over them, oldest
   due date first.
3. ``iban``: the payer's IBAN known for exactly one customer, with an
   amount equal to exactly one of that customer's open invoices, or to
   their whole balance.
4. Anything else waits for a person (the review queue): an unknown payer,
   an amount that fits no invoice or several, a payment larger than what it
   names.  Nothing ambiguous is applied.

:class:`Book` holds what matching reads of the ledger, loaded once for a
whole statement.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from relances.daemon.bank.statements import Entry
from relances.daemon.ledger.bulk import bulk_select
from relances.daemon.ledger.due import open_invoices
from relances.daemon.ledger.references import decode_reference, find_references
from relances.daemon.models import Customer, CustomerIban, Invoice, Reminder

MIN_TOKEN = 4
MAX_JOINED = 4  # tokens joined to find "FA 2024 008" as FA2024008
_TOKEN = re.compile(r"[A-Za-z0-9]+")
_SEGMENT = re.compile(r"[^A-Za-z0-9 \-]+")  # what spaces and dashes do not join


# Every ASCII character that is not a letter or a digit, for the quick path below.
_NOT_ALNUM = str.maketrans("", "", "".join(chr(c) for c in range(128) if not chr(c).isalnum()))


def number_key(number: str) -> str:
    """An invoice number as matching compares it: upper case, no spaces, dashes or dots."""
    if number.isascii():  # the same as the expression below, ten times quicker
        return number.translate(_NOT_ALNUM).upper()
    return "".join(_TOKEN.findall(number)).upper()


class OpenInvoice(NamedTuple):  # a tuple: a book holds a hundred thousand of them
    id: int
    number: str
    customer_id: int
    remaining: Decimal
    due_date: dt.date


def _due_order(invoice: OpenInvoice) -> tuple[dt.date, str]:
    return invoice.due_date, invoice.number


@dataclass(frozen=True, slots=True)
class Allocation:
    invoice: OpenInvoice
    amount: Decimal


@dataclass
class Outcome:
    """What an entry pays (``allocations``, by ``rule``) or why it waits (``reason``)."""

    rule: str | None = None
    allocations: list[Allocation] = field(default_factory=list)
    reason: str | None = None
    candidates: set[int] = field(default_factory=set)  # customers it may belong to

    @property
    def matched(self) -> bool:
        return bool(self.allocations)


@dataclass
class Book:
    """The open invoices and the known payers, as matching needs them."""

    by_key: dict[str, OpenInvoice] = field(default_factory=dict)
    by_id: dict[int, OpenInvoice] = field(default_factory=dict)
    by_customer: dict[int, list[OpenInvoice]] = field(default_factory=lambda: defaultdict(list))
    by_amount: dict[Decimal, set[int]] = field(default_factory=lambda: defaultdict(set))
    ibans: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    codes: dict[str, int] = field(default_factory=dict)
    statements: dict[tuple[int, dt.date], list[str]] = field(default_factory=dict)

    def add(self, invoice: OpenInvoice) -> None:
        self.by_key[number_key(invoice.number)] = invoice
        self.by_id[invoice.id] = invoice
        self.by_customer[invoice.customer_id].append(invoice)
        self.by_amount[invoice.remaining].add(invoice.customer_id)

    def settle(self, allocation: Allocation) -> None:
        """What an earlier entry of the same statement paid is no longer due."""
        old = allocation.invoice
        left = old.remaining - allocation.amount
        siblings = self.by_customer[old.customer_id]
        current = self.by_id[old.id]
        siblings[:] = [i for i in siblings if i is not current]
        self.by_key.pop(number_key(old.number), None)
        self.by_id.pop(old.id, None)
        if left > 0:
            self.add(OpenInvoice(old.id, old.number, old.customer_id, left, old.due_date))
            self.by_customer[old.customer_id].sort(key=_due_order)


async def load_book(session: AsyncSession) -> Book:
    book = Book()
    rows = await bulk_select(session, select(
        Invoice.id, Invoice.number, Invoice.customer_id, Invoice.remaining,
        Invoice.due_date).where(open_invoices()))
    for row in rows:
        book.add(OpenInvoice(*row))
    for invoices in book.by_customer.values():  # oldest due first, as settle() keeps them
        invoices.sort(key=_due_order)
    for iban, customer_id in await session.execute(
            select(CustomerIban.iban, CustomerIban.customer_id)):
        book.ibans[iban].add(customer_id)
    for code, customer_id in await session.execute(select(Customer.code, Customer.id)):
        if len(number_key(code)) >= MIN_TOKEN:
            book.codes[number_key(code)] = customer_id
    return book


async def statement_invoices(session: AsyncSession, customer_id: int, on: dt.date,
                             zone: Any) -> list[str]:
    """The invoices listed by the statements sent to a customer on a day."""
    rows = await session.execute(
        select(Reminder.invoice_numbers, Reminder.as_of, Reminder.sent_at).where(
            Reminder.kind == "statement", Reminder.customer_id == customer_id,
            Reminder.state == "sent"))
    found: list[str] = []
    for numbers, as_of, sent_at in rows:
        if sent_at is not None and sent_at.tzinfo is None:
            sent_at = sent_at.replace(tzinfo=dt.UTC)  # SQLite hands back naive UTC
        day = as_of or (sent_at.astimezone(zone).date() if sent_at else None)
        if day == on:
            found += [n for n in numbers.split(",") if n and n not in found]
    return found


def quoted_references(entry: Entry) -> list[str]:
    """The references an entry quotes: its structured one, then every RF reference
    in what the payer wrote."""
    return [r for r in (entry.reference or "",) if r] + find_references(remittance(entry))


def statement_targets(entry: Entry) -> set[tuple[int, dt.date]]:
    """The statements (customer id, day) whose reference the entry quotes."""
    found = set()
    for reference in quoted_references(entry):
        target = decode_reference(reference)
        if target is not None and target[0] == "statement":
            customer_id, day = target[1]  # type: ignore[misc]
            found.add((int(customer_id), day))
    return found


def named_keys(text: str) -> Iterable[str]:
    """What the text may name as an invoice: each word with its punctuation taken
    out ("FA/2024/008"), and runs of up to four whole tokens that spaces or
    dashes join ("FA 2024 008", "fa-2024-008"), of at least four characters;
    never a piece of a longer token, nor tokens across a slash or a dot (a
    date)."""
    for word in text.split():
        key = number_key(word)
        if len(key) >= MIN_TOKEN:
            yield key
    for segment in _SEGMENT.split(text):
        tokens = [t.upper() for t in _TOKEN.findall(segment)]
        for start in range(len(tokens)):
            joined = ""
            for token in tokens[start:start + MAX_JOINED]:
                joined += token
                if len(joined) >= MIN_TOKEN:
                    yield joined


def allocate(amount: Decimal, invoices: Sequence[OpenInvoice], rule: str) -> Outcome:
    """Split ``amount`` over ``invoices``, oldest due first; more than they owe waits."""
    ordered = sorted({i.id: i for i in invoices}.values(), key=lambda i: (i.due_date, i.number))
    owed = sum((i.remaining for i in ordered), Decimal(0))
    customers = {i.customer_id for i in ordered}
    if amount > owed:
        names = ", ".join(i.number for i in ordered)
        return Outcome(reason=f"{amount} € is more than the {owed} € still due on {names}",
                       candidates=customers)
    allocations, left = [], amount
    for invoice in ordered:
        if left <= 0:
            break
        part = min(left, invoice.remaining)
        allocations.append(Allocation(invoice, part))
        left -= part
    return Outcome(rule=rule, allocations=allocations, candidates=customers)


def remittance(entry: Entry) -> str:
    """What the payer wrote: the free text, and the end-to-end id, where many put
    the invoice number."""
    return f"{entry.text} {entry.end_to_end_id or ''}".strip()


def _by_reference(entry: Entry, book: Book,
                  statements: dict[tuple[int, dt.date], list[str]]) -> list[OpenInvoice] | None:
    found: list[OpenInvoice] = []
    for reference in quoted_references(entry):
        target = decode_reference(reference)
        if target is None:
            invoice = book.by_key.get(number_key(reference))
            found += [invoice] if invoice else []
        elif target[0] == "number":
            invoice = book.by_key.get(number_key(str(target[1])))
            found += [invoice] if invoice else []
        elif target[0] == "id":
            invoice = book.by_id.get(int(str(target[1])))
            found += [invoice] if invoice else []
        else:
            numbers = statements.get(target[1], [])  # type: ignore[call-overload]
            found += [book.by_key[k] for k in map(number_key, numbers) if k in book.by_key]
    return found or None


def _by_iban(entry: Entry, book: Book) -> Outcome | None:
    customers = book.ibans.get(entry.counterparty_iban or "", set())
    if len(customers) != 1:
        return None
    [customer] = customers
    invoices = book.by_customer.get(customer, [])
    exact = [i for i in invoices if i.remaining == entry.amount]
    if len(exact) == 1:
        return allocate(entry.amount, exact, "iban")
    if invoices and entry.amount == sum((i.remaining for i in invoices), Decimal(0)):
        return allocate(entry.amount, invoices, "iban")
    why = "fits several of their invoices" if exact else "fits none of their invoices"
    return Outcome(reason=f"a payer known for one customer, but the amount {why}",
                   candidates={customer})


def match(entry: Entry, book: Book,
          statements: dict[tuple[int, dt.date], list[str]] | None = None) -> Outcome:
    """What ``entry`` (a credit) pays, by the first rule that applies."""
    by_reference = _by_reference(entry, book, statements or {})
    if by_reference:
        return allocate(entry.amount, by_reference, "reference")
    named = [book.by_key[key] for key in named_keys(remittance(entry)) if key in book.by_key]
    if named:
        return allocate(entry.amount, named, "number")
    by_iban = _by_iban(entry, book)
    if by_iban is not None:
        return by_iban
    return Outcome(reason="no reference, invoice number or known payer",
                   candidates=candidates(entry, book))


def candidates(entry: Entry, book: Book) -> set[int]:
    """Customers a waiting entry may belong to: known payer, named code, or the
    amount of one of their open invoices."""
    found = set(book.ibans.get(entry.counterparty_iban or "", set()))
    found |= {book.codes[key] for key in named_keys(f"{remittance(entry)} {entry.counterparty}")
              if key in book.codes}
    same_amount = book.by_amount.get(entry.amount, set())
    if len(same_amount) <= 3:  # an amount many customers owe says nothing of who paid
        found |= same_amount
    return found
