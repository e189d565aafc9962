"""French late-payment charges between businesses.

Article L441-10 of the Code de commerce: an unpaid invoice bears interest
from the day after its due date, at the reference rate plus ten points
unless the contract says otherwise, and a fixed indemnity for recovery
costs of 40 € per invoice (article D441-5).  The reference rate is the
ECB's in force on 1 January for the days of January to June, on 1 July
for July to December (:mod:`relances.daemon.ledger.ecbrates`): a delay
across half-years is counted at each half-year's rate.  A public buyer
owes, for the whole delay, the rate in force on the first day of the
half-year in which the delay began, plus eight points (article R2192-31
of the Code de la commande publique).  Consumers owe neither.  Interest
is simple, counted by the day on a 365-day year, and rounded to the cent
once per invoice.  Each day bears interest on that day's balance: a part
payment made during the delay lowers it from the day it was made, so the
days before it count the higher balance.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from relances.daemon.config import LateChargeSettings
from relances.daemon.ledger.ecbrates import (
    TABLE,
    half_year,
    half_year_bounds,
    half_year_key,
    parse_half_year,
)

log = logging.getLogger(__name__)
_WARNED: set[str] = set()  # half-years already said to be missing, once per process

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
DAYS_PER_YEAR = Decimal(365)


@dataclass(frozen=True)
class Period:
    """Days of a delay counted at one rate: a half-year's, or the whole delay's."""

    start: dt.date
    end: dt.date
    annual_rate: Decimal
    reference_rate: Decimal
    # The half-year (2025, 2); None when one rate covers the whole delay (a public buyer).
    year: int | None = None
    half: int | None = None

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def half_year(self) -> str | None:
        """``2025-H2``, as ``late_charges.reference_rates`` names it."""
        return half_year_key(self.year, self.half) if self.year and self.half else None


@dataclass(frozen=True)
class LateCharges:
    """What one invoice owes on top of its remaining amount, as of a date."""

    days: int
    annual_rate: Decimal  # the rate of the delay's last day
    interest: Decimal
    indemnity: Decimal
    periods: tuple[Period, ...] = ()

    @property
    def total(self) -> Decimal:
        return self.interest + self.indemnity


def days_late(due_date: dt.date, as_of: dt.date) -> int:
    """Days from the day after ``due_date`` through ``as_of``, both counted."""
    return max(0, (as_of - due_date).days)


def _accrued(balance: Decimal, annual_rate: Decimal, days: int) -> Decimal:
    """``balance × rate% × days / 365``, not rounded."""
    return balance * annual_rate / Decimal(100) * Decimal(days) / DAYS_PER_YEAR


def _to_cent(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def interest(remaining: Decimal, annual_rate: Decimal, days: int) -> Decimal:
    """``remaining × rate% × days / 365``, rounded half-up to the cent."""
    if days <= 0 or remaining <= 0:
        return ZERO
    return _to_cent(_accrued(remaining, annual_rate, days))


def margin_points(settings: LateChargeSettings, *, public: bool = False) -> Decimal:
    """The points added to the reference rate: 8 for a public buyer (R2192-31), else 10."""
    return settings.public_margin_points if public else settings.margin_points


def reference_rate(settings: LateChargeSettings, year: int, half: int) -> Decimal:
    """The ECB rate of a half-year: the settings' correction, else the table, else
    (with a warning, once) the last half-year known before it."""
    given = {parse_half_year(k): v for k, v in settings.reference_rates.items()}
    known = {**TABLE, **given}
    if (year, half) in known:
        return known[(year, half)]
    earlier = [key for key in known if key < (year, half)]
    last = max(earlier) if earlier else min(known)
    key = half_year_key(year, half)
    if key not in _WARNED:
        _WARNED.add(key)
        log.warning("late_charges.reference_rates: no ECB rate for %s; the rate of %s (%s %%) "
                    "is used until it is added", key, half_year_key(*last), known[last])
    return known[last]


def periods(due_date: dt.date, as_of: dt.date, settings: LateChargeSettings, *,
            public: bool = False) -> tuple[Period, ...]:
    """The days from the day after ``due_date`` through ``as_of``, by rate."""
    first = due_date + dt.timedelta(days=1)
    if as_of < first:
        return ()
    if settings.reference_rate is not None:  # deprecated: one rate for the whole delay
        margin = margin_points(settings, public=public)
        return (Period(first, as_of, settings.reference_rate + margin, settings.reference_rate),)
    if public:
        rate = reference_rate(settings, *half_year(first))
        return (Period(first, as_of, rate + settings.public_margin_points, rate),)
    found = []
    start = first
    while start <= as_of:
        year, half = half_year(start)
        end = min(half_year_bounds(year, half)[1], as_of)
        rate = reference_rate(settings, year, half)
        found.append(Period(start, end, rate + settings.margin_points, rate, year, half))
        start = end + dt.timedelta(days=1)
    return tuple(found)


def late_charges(
    remaining: Decimal,
    due_date: dt.date,
    as_of: dt.date,
    settings: LateChargeSettings,
    *,
    is_consumer: bool,
    kind: str = "business",
    payments: Sequence[tuple[dt.date, Decimal]] = (),
) -> LateCharges:
    """Interest and indemnity owed on one invoice; nothing for a consumer.

    ``payments`` (day, amount) are those already deducted from ``remaining``;
    the ones made after the due date raise the balance of the days before them.
    """
    days = days_late(due_date, as_of)
    spans = periods(due_date, as_of, settings, public=kind == "public")
    rate = spans[-1].annual_rate if spans else current_rate(as_of, settings,
                                                            public=kind == "public")
    if is_consumer or days == 0 or remaining <= 0:
        return LateCharges(days=days, annual_rate=rate, interest=ZERO, indemnity=ZERO)
    late = sorted((day, amount) for day, amount in payments if day > due_date and amount > 0)
    raw = sum((_accrued(balance, p.annual_rate, days)
               for p in spans for balance, days in _balances(p, remaining, late)), Decimal(0))
    return LateCharges(
        days=days,
        annual_rate=rate,
        interest=_to_cent(raw),
        indemnity=settings.recovery_indemnity.quantize(CENT),
        periods=spans,
    )


def _balances(period: Period, remaining: Decimal,
              payments: list[tuple[dt.date, Decimal]]) -> list[tuple[Decimal, int]]:
    """The period's days by balance: ``remaining`` plus what was paid after each day."""
    pieces, start = [], period.start
    for day in [d for d, _ in payments if period.start < d <= period.end] + [
            period.end + dt.timedelta(days=1)]:
        if day > start:
            balance = remaining + sum((a for d, a in payments if d > start), Decimal(0))
            pieces.append((balance, (day - start).days))
            start = day
    return pieces


def current_rate(as_of: dt.date, settings: LateChargeSettings, *, public: bool = False) -> Decimal:
    """The annual rate of a delay that runs on ``as_of``: the reference rate of its
    half-year plus the margin."""
    margin = margin_points(settings, public=public)
    if settings.reference_rate is not None:
        return settings.reference_rate + margin
    return reference_rate(settings, *half_year(as_of)) + margin
