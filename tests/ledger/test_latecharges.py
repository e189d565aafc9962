"""French late-payment interest and the 40 € indemnity."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from relances.daemon.config import LateChargeSettings
from relances.daemon.ledger.latecharges import days_late, interest, late_charges

RATES = LateChargeSettings()  # 2.15 + 10 points, 40 €


def test_seed_invoice_at_level_3() -> None:
    # 680,40 € due 08/02/2024, as of 22/11/2024: 288 days at 12,15 %.
    charges = late_charges(Decimal("680.40"), dt.date(2024, 2, 8), dt.date(2024, 11, 22),
                           RATES, is_consumer=False)
    assert charges.days == 288
    assert charges.annual_rate == Decimal("12.15")
    # 680.40 × 0.1215 × 288 / 365 = 65.2290…
    assert charges.interest == Decimal("65.23")
    assert charges.indemnity == Decimal("40.00")
    assert charges.total == Decimal("105.23")


def test_counted_from_the_day_after_the_due_date() -> None:
    due = dt.date(2024, 3, 31)
    assert days_late(due, due) == 0
    assert days_late(due, dt.date(2024, 4, 1)) == 1
    assert days_late(due, dt.date(2024, 3, 1)) == 0
    on_due_date = late_charges(Decimal("100"), due, due, RATES, is_consumer=False)
    assert on_due_date.interest == 0 and on_due_date.indemnity == 0


def test_day_count_on_365_days_even_in_a_leap_year() -> None:
    rates = LateChargeSettings(reference_rate=Decimal("0"), margin_points=Decimal("10"))
    # 366 days of 2024 at 10 %: 1000 × 0.10 × 366 / 365 = 100.2739…
    charges = late_charges(Decimal("1000.00"), dt.date(2023, 12, 31), dt.date(2024, 12, 31),
                           rates, is_consumer=False)
    assert charges.days == 366
    assert charges.interest == Decimal("100.27")


def test_rounded_half_up_to_the_cent() -> None:
    # 73 days at 10 % on 0.50 €: 0.50 × 0.10 × 73 / 365 = 0.01 exactly; 36.5 days worth 0.005.
    assert interest(Decimal("0.50"), Decimal("10"), 73) == Decimal("0.01")
    assert interest(Decimal("1.00"), Decimal("18.25"), 10) == Decimal("0.01")  # 0.005 → 0.01
    assert interest(Decimal("1.00"), Decimal("18.25"), 9) == Decimal("0.00")   # 0.0045 → 0.00


def test_consumers_owe_neither_interest_nor_indemnity() -> None:
    charges = late_charges(Decimal("253.06"), dt.date(2023, 11, 24), dt.date(2024, 11, 22),
                           RATES, is_consumer=True)
    assert charges.days == 364
    assert charges.interest == 0 and charges.indemnity == 0


def test_rate_and_indemnity_come_from_settings() -> None:
    rates = LateChargeSettings(reference_rate=Decimal("4.5"), margin_points=Decimal("10"),
                               recovery_indemnity=Decimal("40"))
    charges = late_charges(Decimal("365.00"), dt.date(2024, 1, 1), dt.date(2024, 1, 11),
                           rates, is_consumer=False)
    # 365 × 14.5 % × 10 / 365 = 1.45
    assert charges.interest == Decimal("1.45")
    assert charges.indemnity == Decimal("40.00")
