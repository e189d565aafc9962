"""The reference rate of French late-payment interest, half-year by half-year.

Article L441-10 of the Code de commerce: for the days of January to June,
the rate the European Central Bank applied to its most recent main
refinancing operation on 1 January; for July to December, on 1 July.

Source: the ECB's key interest rates, main refinancing operations (fixed
rate), as published by the ECB and the Banque de France ("taux directeurs
de la BCE"), read on the first day of each half-year.  A half-year after
the table, or a correction, goes in ``late_charges.reference_rates`` of
``settings.yaml`` (``"2026-H2": "2.15"``).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

# (year, half) → the rate in percent.
TABLE: dict[tuple[int, int], Decimal] = {
    (2015, 1): Decimal("0.05"), (2015, 2): Decimal("0.05"),
    (2016, 1): Decimal("0.05"), (2016, 2): Decimal("0.00"),
    **{(year, half): Decimal("0.00") for year in range(2017, 2023) for half in (1, 2)},
    (2023, 1): Decimal("2.50"), (2023, 2): Decimal("4.00"),
    (2024, 1): Decimal("4.50"), (2024, 2): Decimal("4.25"),
    (2025, 1): Decimal("3.15"), (2025, 2): Decimal("2.15"),
    (2026, 1): Decimal("2.15"),
}


def half_year(day: dt.date) -> tuple[int, int]:
    """``(2025, 2)`` for a day of July to December 2025."""
    return day.year, 1 if day.month <= 6 else 2


def half_year_key(year: int, half: int) -> str:
    """``2025-H2``, as ``late_charges.reference_rates`` writes a half-year."""
    return f"{year}-H{half}"


def half_year_bounds(year: int, half: int) -> tuple[dt.date, dt.date]:
    """The first and the last day of a half-year."""
    if half == 1:
        return dt.date(year, 1, 1), dt.date(year, 6, 30)
    return dt.date(year, 7, 1), dt.date(year, 12, 31)


def parse_half_year(text: str) -> tuple[int, int]:
    """``"2026-H2"`` → ``(2026, 2)``; ValueError for anything else."""
    year, sep, half = text.strip().upper().partition("-H")
    if not (sep and year.isdigit() and len(year) == 4 and half in ("1", "2")):
        raise ValueError(f"a half-year is written YYYY-H1 or YYYY-H2, not {text!r}")
    return int(year), int(half)
