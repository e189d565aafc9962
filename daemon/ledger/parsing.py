"""Reading values as French accounting exports write them.

``253,06`` and ``1 253,06`` are amounts, ``24/11/2023`` is a date; the
English formats (``253.06``, ``2023-11-24``) are accepted as well.  What
is legal for Python but not in an export is refused: an amount in
scientific notation (Excel's ``1,23457E+11`` has lost its last digits),
with underscores or digits of another script, above :data:`MAX_AMOUNT`;
a date before 1900 or after 2100 (a due date in year 1 would charge two
thousand years of interest).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from decimal import Decimal, InvalidOperation

from relances.daemon.config import MAX_AMOUNT

CENT = Decimal("0.01")
FIRST_YEAR, LAST_YEAR = 1900, 2100
# An amount once spaces, the euro sign and the thousands separators are gone.
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_SPACES = re.compile(r"[\s\u00a0\u202f]")
_FR_DATE = re.compile(r"([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# What nearly every cell of an export holds: "1 253,06", "253,06", "-12,50",
# "253.06" (at most 12 digits before the decimals, ASCII only).  These read
# straight to the Decimal the general rules below would give.
_PLAIN_AMOUNT = re.compile(r"(-?)([0-9]{1,3}(?: [0-9]{3}){1,3}|[0-9]{1,12})([,.])([0-9]{2})")
# Dates read so far, by their text: an export holds a few hundred distinct ones.
_DATES: dict[str, dt.date] = {}
_NOT_DATES: set[str] = set()
_REMEMBERED = 20_000


def parse_amount(text: str) -> Decimal:
    """``"1 253,06"`` → ``Decimal("1253.06")``; raises ValueError."""
    plain = _PLAIN_AMOUNT.fullmatch(text)
    if plain is not None:
        sign, units, _, cents = plain.groups()
        return Decimal(f"{sign}{units.replace(' ', '')}.{cents}")
    raw = _SPACES.sub("", text.strip()).replace("€", "")
    if "," in raw:
        if "." in raw:  # 1.253,06: dots group thousands
            raw = raw.replace(".", "")
        raw = raw.replace(",", ".")
    if not _DECIMAL.fullmatch(raw):
        if raw.isascii() and re.fullmatch(r"[+-]?[0-9.]+[eE][+-]?[0-9]+", raw):
            raise ValueError(f"an amount in scientific notation: {text!r} (format the column "
                             "as a number with two decimals)")
        raise ValueError(f"not an amount: {text!r}")
    try:
        value = Decimal(raw)
        if abs(value) > MAX_AMOUNT:
            raise ValueError(f"an amount above {MAX_AMOUNT}: {text!r}")
        cents = value.quantize(CENT)
    except InvalidOperation:
        raise ValueError(f"not an amount: {text!r}") from None
    if value != cents:
        raise ValueError(f"more than two decimals: {text!r}")
    return cents


def plain_amount(text: str) -> tuple[str, int] | None:
    """For the common forms alone (``1 253,06``, ``-12,50``, ``253.06``): the text of
    the Decimal :func:`parse_amount` gives, and the amount in cents; None for any
    other text, which :func:`parse_amount` reads or refuses."""
    plain = _PLAIN_AMOUNT.fullmatch(text)
    if plain is None:
        return None
    sign, units, _, cents = plain.groups()
    digits = units.replace(" ", "")
    return f"{sign}{digits}.{cents}", int(f"{sign}{digits}{cents}")


def parse_date(text: str) -> dt.date:
    """``"24/11/2023"`` or ``"2023-11-24"`` → a date; raises ValueError."""
    date = _DATES.get(text)
    if date is None:
        date = _read_date(text)
        if len(_DATES) < _REMEMBERED:
            _DATES[text] = date
    return date


def _read_date(text: str) -> dt.date:
    raw = text.strip()
    match = _FR_DATE.fullmatch(raw)
    try:
        if match:
            day, month, year = (int(g) for g in match.groups())
            date = dt.date(year, month, day)
        elif _ISO_DATE.fullmatch(raw):
            date = dt.date.fromisoformat(raw)
        else:
            raise ValueError(raw)
    except ValueError:
        raise ValueError(f"not a date (expected DD/MM/YYYY): {text!r}") from None
    if not FIRST_YEAR <= date.year <= LAST_YEAR:
        raise ValueError(f"a date before {FIRST_YEAR} or after {LAST_YEAR}: {text!r}")
    return date


def date_or_none(text: str) -> dt.date | None:
    """The date ``text`` holds, or None when it holds none (no exception raised)."""
    date = _DATES.get(text)
    if date is not None or text in _NOT_DATES:
        return date
    try:
        return parse_date(text)
    except ValueError:
        if len(_NOT_DATES) < _REMEMBERED:
            _NOT_DATES.add(text)
        return None


def looks_like_date(text: str) -> bool:
    return date_or_none(text) is not None


def parse_bool(text: str) -> bool:
    raw = fold(text)
    if raw in {"1", "true", "yes", "oui", "o", "y", "vrai", "x"}:
        return True
    if raw in {"", "0", "false", "no", "non", "n", "faux"}:
        return False
    raise ValueError(f"not a yes/no value: {text!r}")


def fold(text: str) -> str:
    """Lower case, no accents, no dots, single spaces: how headers are matched."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    plain = plain.replace("°", " ").replace(".", " ").replace("_", " ")
    return " ".join(plain.casefold().split())
