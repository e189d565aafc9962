"""French late-payment interest and the 40 € indemnity."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from relances.daemon.config import LateChargeSettings
from relances.daemon.ledger import latecharges
from relances.daemon.ledger.latecharges import days_late, interest, late_charges

RATES = LateChargeSettings()  # each half-year's ECB rate + 10 points, 40 €


def test_seed_invoice_at_level_3() -> None:
    # 680,40 € due 08/02/2024, as of 22/11/2024: 288 days, 143 of the first half of 2024
    # (ECB 4,50 % on 1 January, + 10 points) and 145 of the second (4,25 % on 1 July).
    charges = late_charges(Decimal("680.40"), dt.date(2024, 2, 8), dt.date(2024, 11, 22),
                           RATES, is_consumer=False)
    assert charges.days == 288
    assert [(p.half_year, p.start, p.end, p.days, p.annual_rate) for p in charges.periods] == [
        ("2024-H1", dt.date(2024, 2, 9), dt.date(2024, 6, 30), 143, Decimal("14.50")),
        ("2024-H2", dt.date(2024, 7, 1), dt.date(2024, 11, 22), 145, Decimal("14.25"))]
    assert charges.annual_rate == Decimal("14.25")  # the rate of the letter's day
    # 680.40 × (0.1450 × 143 + 0.1425 × 145) / 365 = 77.1681…, rounded once
    assert charges.interest == Decimal("77.17")
    assert charges.indemnity == Decimal("40.00")
    assert charges.total == Decimal("117.17")


def test_each_day_at_the_rate_of_its_half_year() -> None:
    # Due 31/05/2025: June at 3,15 + 10 %, then 62 days of July and August at 2,15 + 10 %.
    charges = late_charges(Decimal("1000.00"), dt.date(2025, 5, 31), dt.date(2025, 8, 31),
                           RATES, is_consumer=False)
    assert [(p.days, p.annual_rate) for p in charges.periods] == [
        (30, Decimal("13.15")), (62, Decimal("12.15"))]
    # 1000 × (0.1315 × 30 + 0.1215 × 62) / 365 = 31.4465…
    assert charges.interest == Decimal("31.45")


def test_a_delay_over_several_years_crosses_every_half_year() -> None:
    charges = late_charges(Decimal("100.00"), dt.date(2022, 12, 31), dt.date(2025, 1, 1),
                           RATES, is_consumer=False)
    assert [p.half_year for p in charges.periods] == [
        "2023-H1", "2023-H2", "2024-H1", "2024-H2", "2025-H1"]
    assert sum(p.days for p in charges.periods) == charges.days == 732
    assert charges.periods[-1].days == 1


def test_a_public_buyer_owes_the_rate_of_the_half_year_the_delay_began_plus_8_points() -> None:
    charges = late_charges(Decimal("1000.00"), dt.date(2025, 5, 31), dt.date(2025, 8, 31),
                           RATES, is_consumer=False, kind="public")
    (period,) = charges.periods
    assert (period.days, period.annual_rate, period.half_year) == (92, Decimal("11.15"), None)
    # 1000 × 0.1115 × 92 / 365 = 28.1041…
    assert charges.interest == Decimal("28.10")
    assert charges.indemnity == Decimal("40.00")


def test_a_half_year_added_or_corrected_in_the_settings(caplog: pytest.LogCaptureFixture,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(latecharges, "_WARNED", set())  # said once per process
    due, as_of = dt.date(2026, 6, 30), dt.date(2026, 7, 10)
    missing = late_charges(Decimal("365.00"), due, as_of, RATES, is_consumer=False)
    assert missing.periods[0].reference_rate == Decimal("2.15")  # 2026-H1's, the last known
    assert "no ECB rate for 2026-H2" in caplog.text
    given = LateChargeSettings(reference_rates={"2026-H2": Decimal("2.40"),
                                                "2024-H1": Decimal("4.00")})
    added = late_charges(Decimal("365.00"), due, as_of, given, is_consumer=False)
    assert added.periods[0].annual_rate == Decimal("12.40")
    assert added.interest == Decimal("1.24")  # 365 × 12,40 % × 10 / 365
    corrected = late_charges(Decimal("365.00"), dt.date(2024, 1, 1), dt.date(2024, 1, 11),
                             given, is_consumer=False)
    assert corrected.periods[0].annual_rate == Decimal("14.00")


def test_half_years_are_written_yyyy_h1_or_h2() -> None:
    with pytest.raises(ValueError, match="String should match pattern"):
        LateChargeSettings(reference_rates={"2026-07": Decimal("2")})


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


def test_a_part_payment_lowers_the_balance_from_its_day() -> None:
    flat = LateChargeSettings(reference_rate=Decimal("0"), margin_points=Decimal("10"))
    # 1000 € due 01/01/2024, 500 € paid on 11/01, as of 21/01: the 9 days from 02/01 to
    # 10/01 bear interest on 1000 €, the 11 from 11/01 to 21/01 on the 500 € left.
    charges = late_charges(Decimal("500.00"), dt.date(2024, 1, 1), dt.date(2024, 1, 21), flat,
                           is_consumer=False, payments=[(dt.date(2024, 1, 11), Decimal("500"))])
    # (1000 × 9 + 500 × 11) × 0.10 / 365 = 3.9726…
    assert charges.interest == Decimal("3.97")
    # A payment made by the due date was never late: the balance is what remains.
    early = late_charges(Decimal("500.00"), dt.date(2024, 1, 1), dt.date(2024, 1, 21), flat,
                         is_consumer=False, payments=[(dt.date(2024, 1, 1), Decimal("500"))])
    assert early.interest == interest(Decimal("500.00"), Decimal("10"), 20) == Decimal("2.74")


def test_part_payments_across_half_years() -> None:
    # Due 31/05/2025; 400 € of 1000 € paid on 01/07, 100 € more on 01/08; as of 31/08.
    charges = late_charges(Decimal("500.00"), dt.date(2025, 5, 31), dt.date(2025, 8, 31), RATES,
                           is_consumer=False, payments=[(dt.date(2025, 8, 1), Decimal("100")),
                                                        (dt.date(2025, 7, 1), Decimal("400"))])
    # June on 1000 € at 13,15 %; July on 600 € and August on 500 € at 12,15 %.
    expected = (Decimal(1000) * Decimal("0.1315") * 30 + Decimal(600) * Decimal("0.1215") * 31
                + Decimal(500) * Decimal("0.1215") * 31) / 365
    assert charges.interest == expected.quantize(Decimal("0.01"))
