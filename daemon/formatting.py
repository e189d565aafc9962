"""How the command line writes amounts, dates and tables, the French way.

Also what makes outside text safe where it is written: :func:`printable` for a
terminal, :func:`write_csv` for a spreadsheet.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import TextIO
from zoneinfo import ZoneInfo

# C0 and C1 controls and DEL (escape sequences, carriage returns, bells) and the
# invisible marks that reorder text (bidi overrides and isolates): a name holding
# them could retitle the terminal, hide a line or show "1202" for "2021".
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e"
                          r"\u2028\u2029\u2066-\u2069]")
# A spreadsheet reads a cell opening with one of these as a formula (OWASP, CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


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


def printable(text: str) -> str:
    """``text`` with its control characters shown as escapes (``\\x1b``, ``\\u202e``),
    for a terminal: what outside data holds is displayed, never obeyed."""
    return _UNPRINTABLE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]],
          right: frozenset[int] = frozenset()) -> str:
    """A plain text table with aligned columns; ``right`` holds right-aligned columns.

    Every cell goes through :func:`printable`."""
    headers = [printable(h) for h in headers]
    rows = [[printable(c) for c in row] for row in rows]
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


def spreadsheet_cell(value: object) -> object:
    """A text cell a spreadsheet would run as a formula, with a ``'`` put first
    (OWASP's rule); anything that is not text (an amount, a date, a count) as it is,
    so a negative amount stays a number."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def french_cell(value: object) -> object:
    """A value as a French spreadsheet reads it: ``1253,06``, ``24/11/2024``, ``oui``."""
    if isinstance(value, bool):
        return "oui" if value else "non"
    if isinstance(value, Decimal):
        return f"{value:f}".replace(".", ",")
    if isinstance(value, float):
        return repr(value).replace(".", ",")
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return f"{value:%d/%m/%Y}"
    return value


def write_csv(out: TextIO, header: Sequence[str], rows: Iterable[Sequence[object]], *,
              french: bool = False) -> None:
    """Write a CSV file, every cell through :func:`spreadsheet_cell`: the one way the
    project writes CSV (what the file holds comes from outside and is opened in Excel).

    ``french``: what a French Excel or LibreOffice opens as it is, by a
    double click: a BOM (else it reads the bytes as Windows-1252), ``;``
    between cells (the comma is the decimal sign), decimal commas and
    ``JJ/MM/AAAA`` dates (:func:`french_cell`).  Otherwise RFC 4180 as
    programs read it: commas, decimal points, ISO dates.

    Lines end in CRLF (RFC 4180): the csv module then quotes a cell holding a
    CR, which it leaves bare under a LF ending, splitting the row in two."""
    writer = csv.writer(out, delimiter=";" if french else ",")
    # The formula guard looks at the value as it came (a negative amount is no text),
    # the French form then writes it.
    cell = (lambda value: french_cell(spreadsheet_cell(value))) if french else spreadsheet_cell
    if french:
        out.write("\ufeff")
    writer.writerow([spreadsheet_cell(name) for name in header])
    writer.writerows([cell(value) for value in row] for row in rows)
