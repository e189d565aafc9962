"""How the command line writes amounts, dates and tables, the French way."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from zoneinfo import ZoneInfo


def amount(value: Decimal | None) -> str:
    """``Decimal("1253.06")`` → ``"1 253,06"`` (as the seed's table writes it)."""
    if value is None:
        return ""
    return f"{value:,.2f}".replace(",", " ").replace(".", ",")


def date(value: dt.date | None) -> str:
    return value.strftime("%d/%m/%Y") if value else ""


def local_time(value: dt.datetime, zone: ZoneInfo) -> tuple[str, str]:
    """A stored UTC timestamp as the business's date and time (``22/11/2024``, ``15:17``)."""
    if value.tzinfo is None:  # SQLite hands back naive UTC
        value = value.replace(tzinfo=dt.UTC)
    local = value.astimezone(zone)
    return local.strftime("%d/%m/%Y"), local.strftime("%H:%M")


def table(headers: Sequence[str], rows: Sequence[Sequence[str]],
          right: frozenset[int] = frozenset()) -> str:
    """A plain text table with aligned columns; ``right`` holds right-aligned columns."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells: Sequence[str]) -> str:
        out = [c.rjust(widths[i]) if i in right else c.ljust(widths[i])
               for i, c in enumerate(cells)]
        return "  ".join(out).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])
