"""French late-payment charges between businesses.

Article L441-10 of the Code de commerce: an unpaid invoice bears interest
from the day after its due date, at the reference rate (the ECB rate) plus
ten points unless the contract says otherwise, and a fixed indemnity for
recovery costs of 40 € per invoice (article D441-5).  Consumers owe
neither.  Interest is simple, counted by the day on a 365-day year, and
rounded to the cent once per invoice.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from relances.daemon.config import LateChargeSettings

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
DAYS_PER_YEAR = Decimal(365)


@dataclass(frozen=True)
class LateCharges:
    """What one invoice owes on top of its remaining amount, as of a date."""

    days: int
    annual_rate: Decimal
    interest: Decimal
    indemnity: Decimal

    @property
    def total(self) -> Decimal:
        return self.interest + self.indemnity


def days_late(due_date: dt.date, as_of: dt.date) -> int:
    """Days from the day after ``due_date`` through ``as_of``, both counted."""
    return max(0, (as_of - due_date).days)


def interest(remaining: Decimal, annual_rate: Decimal, days: int) -> Decimal:
    """``remaining × rate% × days / 365``, rounded half-up to the cent."""
    if days <= 0 or remaining <= 0:
        return ZERO
    raw = remaining * annual_rate / Decimal(100) * Decimal(days) / DAYS_PER_YEAR
    return raw.quantize(CENT, rounding=ROUND_HALF_UP)


def late_charges(
    remaining: Decimal,
    due_date: dt.date,
    as_of: dt.date,
    settings: LateChargeSettings,
    *,
    is_consumer: bool,
) -> LateCharges:
    """Interest and indemnity owed on one invoice; nothing for a consumer."""
    rate = settings.annual_rate
    days = days_late(due_date, as_of)
    if is_consumer or days == 0 or remaining <= 0:
        return LateCharges(days=days, annual_rate=rate, interest=ZERO, indemnity=ZERO)
    return LateCharges(
        days=days,
        annual_rate=rate,
        interest=interest(remaining, rate, days),
        indemnity=settings.recovery_indemnity.quantize(CENT),
    )
