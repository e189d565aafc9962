"""Payments recorded here that a bank entry may show, so that none is counted twice.

A cheque typed in with ``relances pay``, a row of a payments file, an
invoice settled by its platform's 212 Encaissée: each is a payment the
bank shows later.  An entry shows one when the amount is the same, the
dates at most ``bank.known_payment_days`` apart, the payment not yet linked
to an entry, and either the entry pays that payment's invoice, or (when the
invoice is no longer open) the entry names it — by number or creditor
reference — or comes from a customer it may belong to.

:class:`KnownPayments` holds the candidates of a statement's date range in
memory, loaded with one query, and hands each out once.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from relances.daemon.bank.matching import named_keys, number_key, quoted_references
from relances.daemon.bank.statements import Entry
from relances.daemon.config import Settings
from relances.daemon.ledger.references import decode_reference
from relances.daemon.models import Invoice, Payment


@dataclass(frozen=True)
class _Recorded:
    id: int
    invoice_id: int
    customer_id: int
    key: str  # the invoice's number as matching compares it
    paid_on: dt.date


class KnownPayments:
    """Recorded payments not yet shown by a bank entry, by amount."""

    def __init__(self, days: int, recorded: Iterable[tuple[Decimal, _Recorded]] = ()) -> None:
        self.window = dt.timedelta(days=days)
        self.by_amount: dict[Decimal, list[_Recorded]] = defaultdict(list)
        for amount, row in recorded:
            self.by_amount[amount].append(row)

    @classmethod
    async def load(cls, session: AsyncSession, settings: Settings,
                   dates: Iterable[dt.date]) -> KnownPayments:
        """The candidates for entries booked on ``dates``, in the order they were paid."""
        days = settings.bank.known_payment_days
        dates = list(dates)
        if not dates:
            return cls(days)
        window = dt.timedelta(days=days)
        rows = (await session.execute(
            select(Payment.id, Payment.invoice_id, Invoice.customer_id, Invoice.number,
                   Payment.paid_on, Payment.amount)
            .join(Invoice, Invoice.id == Payment.invoice_id)
            .where(Payment.bank_entry_id.is_(None),
                   Payment.paid_on.between(min(dates) - window, max(dates) + window))
            .order_by(Payment.paid_on, Payment.id))).all()
        return cls(days, [(r[5], _Recorded(r[0], r[1], r[2], number_key(r[3]), r[4])) for r in rows])

    def _take(self, amount: Decimal, on: dt.date, fits: Callable[[_Recorded], bool]) -> int | None:
        candidates = self.by_amount.get(amount, [])
        for i, recorded in enumerate(candidates):
            if abs(recorded.paid_on - on) <= self.window and fits(recorded):
                del candidates[i]
                return recorded.id
        return None

    def for_invoice(self, invoice_id: int, amount: Decimal, on: dt.date) -> int | None:
        """The payment of ``amount`` for that invoice an entry of ``on`` shows, taken."""
        return self._take(amount, on, lambda r: r.invoice_id == invoice_id)

    def shown(self, entry: Entry, customers: set[int]) -> int | None:
        """The payment an entry that matched no open invoice shows, taken: it names the
        invoice (number or creditor reference) or comes from one of ``customers``."""
        if entry.amount not in self.by_amount:
            return None
        named = set(named_keys(f"{entry.reference or ''} {entry.text}"))
        ids: set[int] = set()
        for reference in quoted_references(entry):
            target = decode_reference(reference)
            if target is not None and target[0] == "number":
                named.add(number_key(str(target[1])))
            elif target is not None and target[0] == "id":
                ids.add(int(str(target[1])))
        return self._take(entry.amount, entry.booked_on,
                          lambda r: r.key in named or r.invoice_id in ids or r.customer_id in customers)
