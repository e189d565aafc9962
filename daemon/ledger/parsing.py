"""Reading values as French accounting exports write them.

``253,06`` and ``1 253,06`` are amounts, ``24/11/2023`` is a date; the
English formats (``253.06``, ``2023-11-24``) are accepted as well.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from decimal import Decimal, InvalidOperation

CENT = Decimal("0.01")
_SPACES = re.compile(r"[\s\u00a0\u202f]")
_FR_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")


def parse_amount(text: str) -> Decimal:
    """``"1 253,06"`` → ``Decimal("1253.06")``; raises ValueError."""
    raw = _SPACES.sub("", text.strip()).replace("€", "")
    if "," in raw:
        if "." in raw:  # 1.253,06: dots group thousands
            raw = raw.replace(".", "")
        raw = raw.replace(",", ".")
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ValueError(f"not an amount: {text!r}") from None
    if not value.is_finite():
        raise ValueError(f"not an amount: {text!r}")
    if value != value.quantize(CENT):
        raise ValueError(f"more than two decimals: {text!r}")
    return value.quantize(CENT)


def parse_date(text: str) -> dt.date:
    """``"24/11/2023"`` or ``"2023-11-24"`` → a date; raises ValueError."""
    raw = text.strip()
    match = _FR_DATE.match(raw)
    try:
        if match:
            day, month, year = (int(g) for g in match.groups())
            return dt.date(year, month, day)
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"not a date (expected DD/MM/YYYY): {text!r}") from None


def looks_like_date(text: str) -> bool:
    try:
        parse_date(text)
    except ValueError:
        return False
    return True


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
