"""What one cell, one row or one value of an import file may hold.

The rules every reader applies before a row is validated: no control
character in a cell, no more filled cells than the header has columns,
no text longer than the column it is written to (the lengths come from the
schema: SQLite would keep a longer value whole, PostgreSQL refuse the
import with a traceback), a JSON value that is text or a number, a
language Relances writes in; and the ``csv`` module's own errors as one
line naming the line.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from relances.daemon.errors import LedgerError
from relances.daemon.ledger.parsing import fold
from relances.daemon.models import Customer, Invoice, Payment


def _lengths(pairs: dict[str, Any]) -> dict[str, int]:
    """The longest text each field's column holds, from the schema."""
    return {field: column.type.length for field, column in pairs.items()}


# What each field is written to.
INVOICE_LENGTHS = _lengths({
    "customer_code": Customer.code, "customer_name": Customer.name,
    "affiliate_code": Customer.affiliate_code, "email": Customer.email,
    "invoice_number": Invoice.number, "payment_method": Invoice.payment_method,
    "settlement": Invoice.settlement, "assignment": Invoice.assignment,
    "representative": Invoice.representative, "pdf_path": Invoice.pdf_path})
CUSTOMER_LENGTHS = _lengths({field: getattr(Customer, field) for field in (
    "code", "affiliate_code", "name", "email", "fax", "phone", "address_line1", "address_line2",
    "postal_code", "city", "country", "policy")})
PAYMENT_LENGTHS = _lengths({"invoice_number": Invoice.number, "method": Payment.method,
                            "reference": Payment.reference})


# C0 and C1 controls and DEL: no cell of an export holds one (a tab separates cells), and
# a CR, an ESC or a NUL in a code or a name would reach letters, terminals and databases.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CSV_ERRORS = {"field larger than field limit": "a cell longer than {limit:,} characters",
               "new-line character seen in unquoted field": "a line break (CR) inside a cell"}


def control_in(text: str) -> str | None:
    """``a control character (U+001B)`` for the first one ``text`` holds, or None."""
    found = CONTROL.search(text)
    return f"a control character (U+{ord(found.group()):04X})" if found else None


def csv_rows(path: Path, reader: Any) -> Iterator[list[str]]:
    """The rows of a ``csv.reader``, its errors as :class:`LedgerError` naming the line."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            text = str(exc)
            reason = next((why for start, why in _CSV_ERRORS.items() if text.startswith(start)),
                          f"not readable as a table: {text}")
            raise LedgerError(f"{path}:{reader.line_num}: "
                              f"{reason.format(limit=csv.field_size_limit())}") from None
        yield row


def checked_row(path: Path, line: int, row: list[str], fields: list[str | None],
                shown: dict[str, str]) -> None:
    """Refuse a row with more filled cells than the header has columns, or a control
    character in a cell (empty cells past the header are trailing separators)."""
    if len(row) > len(fields) and any(cell.strip() for cell in row[len(fields):]):
        raise LedgerError(f"{path}:{line}: {len(row)} cells where the header has "
                          f"{len(fields)} columns (a separator inside a cell?)")
    for position, cell in enumerate(row):
        if (control := control_in(cell)) is not None:
            field = fields[position] if position < len(fields) else None
            column = repr(shown[field]) if field in shown else str(position + 1)
            raise LedgerError(f"{path}:{line}: column {column}: {control} in the cell")


def json_text(path: Path, where: str, key: str, value: Any) -> str:
    """A JSON field's value as the cell it stands for: text, a number or null."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        kind = {bool: "true or false", list: "a list", dict: "an object"}.get(type(value), "")
        raise LedgerError(f"{path}: {where}: field {key!r}: {kind or 'not a value'} where "
                          "text or a number is expected")
    text = str(value)
    if (control := control_in(text)) is not None:
        raise LedgerError(f"{path}: {where}: field {key!r}: {control} in the value")
    return text


_LANGUAGES = {"fr": "fr", "francais": "fr", "french": "fr", "en": "en", "anglais": "en",
              "english": "en"}
_LOCALE = re.compile(r"(fr|en)[- ][a-z]{2}")  # fr-FR, en_GB once folded


def parse_language(text: str) -> str:
    """``fr`` or ``en``, written as a code (``fr``, ``fr-FR``, ``en_GB``) or a word."""
    key = fold(text)
    lang = _LANGUAGES.get(key) or (key[:2] if _LOCALE.fullmatch(key) else None)
    if lang is None:
        raise ValueError(f"language must be fr or en, not {text!r}")
    return lang
