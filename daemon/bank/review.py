"""The review queue: bank credits nothing certain matched, waiting for a person.

``relances bank review`` lists them with suggestions; a person matches one
to invoices (``match``: the payer's IBAN is then remembered for that
customer, so the next payment from them matches alone; what is paid beyond
the invoices becomes a credit on the customer's account) or sets it aside
(``ignore``, with a reason).  Either way the customers it may have belonged
to are reminded again, unless another waiting entry may be theirs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from relances.daemon.bank.apply import described, record_allocations
from relances.daemon.bank.matching import Allocation, OpenInvoice
from relances.daemon.bank.statements import Entry
from relances.daemon.config import Settings
from relances.daemon.errors import BankError
from relances.daemon.ledger.book import add_history, euros, invoice_by_number
from relances.daemon.ledger.due import open_invoices
from relances.daemon.models import BankEntry, Customer, CustomerIban, Invoice, utcnow


@dataclass
class Waiting:
    entry: BankEntry
    customers: list[str] = field(default_factory=list)  # codes it may belong to
    suggestions: list[str] = field(default_factory=list)  # open invoices of that amount


async def waiting(session: AsyncSession) -> list[Waiting]:
    """Every entry in review, oldest first, with what it may be."""
    entries = (await session.execute(select(BankEntry).where(BankEntry.state == "review")
                                     .order_by(BankEntry.booked_on, BankEntry.id))).scalars()
    found = []
    for entry in entries:
        ids = [int(c) for c in entry.candidates.split(",") if c]
        codes = (await session.execute(select(Customer.code).where(Customer.id.in_(ids))
                                       .order_by(Customer.code))).scalars().all() if ids else []
        numbers = (await session.execute(
            select(Invoice.number).where(open_invoices(), Invoice.remaining == entry.amount)
            .order_by(Invoice.due_date, Invoice.number).limit(5))).scalars().all()
        found.append(Waiting(entry, list(codes), list(numbers)))
    return found


async def _in_review(session: AsyncSession, entry_id: int) -> BankEntry:
    entry = await session.get(BankEntry, entry_id, with_for_update=True)
    if entry is None:
        raise BankError(f"no bank entry {entry_id}")
    if entry.state != "review":
        raise BankError(f"bank entry {entry_id} is not waiting for review (it is {entry.state})")
    return entry


async def release_holds(session: AsyncSession, entry: BankEntry) -> None:
    """Customers this entry kept from reminders are reminded again, unless another
    waiting entry may be theirs."""
    ids = {int(c) for c in entry.candidates.split(",") if c}
    others = (await session.execute(select(BankEntry.candidates).where(
        BankEntry.state == "review", BankEntry.id != entry.id))).scalars()
    still = {int(c) for text in others for c in text.split(",") if c}
    for customer_id in sorted(ids - still):
        customer = await session.get(Customer, customer_id)
        if customer is not None:
            customer.review_until = None


def _as_entry(row: BankEntry) -> Entry:
    return Entry(identity=row.identity, booked_on=row.booked_on, amount=row.amount, position=0,
                 where="", counterparty=row.counterparty, counterparty_iban=row.counterparty_iban,
                 reference=row.reference, text=row.text, bank_reference=row.bank_reference)


async def match_by_hand(session: AsyncSession, settings: Settings, entry_id: int,
                        wanted: Sequence[tuple[str, Decimal | None]], *, user: str) -> list[str]:
    """Apply a waiting entry to invoices (number, amount or None for what remains).

    Returns what was done, one line each.
    """
    row = await _in_review(session, entry_id)
    left, allocations, customers = row.amount, [], set()
    for number, amount in wanted:
        invoice = await invoice_by_number(session, number)
        part = invoice.remaining if amount is None else amount
        part = min(part, left) if amount is None else part
        if part <= 0 or part > invoice.remaining:
            raise BankError(f"invoice {number}: {part} € is not between 0 and the "
                            f"{invoice.remaining} € still due")
        if part > left:
            raise BankError(f"bank entry {entry_id}: {part} € for {number} is more than the "
                            f"{left} € left of its {row.amount} €")
        allocations.append(Allocation(OpenInvoice(invoice.id, invoice.number,
                                                  invoice.customer_id, invoice.remaining,
                                                  invoice.due_date), part))
        customers.add(invoice.customer_id)
        left -= part
    if left > 0 and len(customers) != 1:
        raise BankError(f"bank entry {entry_id}: {left} € would be left over, and a credit "
                        "goes to one customer: name their invoices only")
    done = []
    await record_allocations(session, settings, row, _as_entry(row), allocations, user=user)
    done += [f"{a.invoice.number}: {a.amount} € recorded" for a in allocations]
    customer_id = next(iter(customers)) if len(customers) == 1 else None
    if left > 0 and customer_id is not None:
        customer = await session.get(Customer, customer_id)
        assert customer is not None
        customer.credit = customer.credit + left
        add_history(session, user=user, event="credit", customer_id=customer_id,
                    action=f"Trop-perçu de {euros(left)} porté au crédit du client — "
                           f"{described(_as_entry(row))}")
        done.append(f"{customer.code}: {left} € kept as a credit")
    if customer_id is not None and row.counterparty_iban:
        known = await session.scalar(select(CustomerIban.id).where(
            CustomerIban.customer_id == customer_id, CustomerIban.iban == row.counterparty_iban))
        if known is None:
            session.add(CustomerIban(customer_id=customer_id, iban=row.counterparty_iban,
                                     source="match"))
            done.append(f"{row.counterparty_iban} remembered: their next payment matches alone")
    row.state, row.rule, row.customer_id = "matched", "manual", customer_id
    row.resolved_at, row.resolved_by = utcnow(), user
    await release_holds(session, row)
    await session.flush()
    return done


async def ignore(session: AsyncSession, entry_id: int, *, reason: str, user: str) -> None:
    """Set a waiting entry aside (not a customer's payment, a refund, …)."""
    if not reason.strip():
        raise BankError("say why the entry is set aside (--reason)")
    row = await _in_review(session, entry_id)
    row.state, row.note = "ignored", reason.strip()
    row.resolved_at, row.resolved_by = utcnow(), user
    await release_holds(session, row)
    await session.flush()
