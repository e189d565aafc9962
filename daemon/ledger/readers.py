"""Reading import files into validated rows, before anything is written.

Three formats: the seed's tab-separated table with French headers
(``.tsv``, ``.txt``), CSV with French or English headers (``.csv``, comma
or semicolon), and JSON with English field names (``.json``: an array of
objects, or an object holding one).  Every row is checked here; a bad cell
raises :class:`LedgerError` naming the file, the line and the column, and
the caller writes nothing.

An invoice export is read as a stream: the common cells take a fast path
that gives what the general rules would (any other row goes through the
general rules, and their messages), and the validated rows wait in a
temporary file (:class:`InvoiceRows`) rather than in memory.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from email.errors import HeaderParseError
from email.headerregistry import Address
from pathlib import Path
from typing import Any

from schwifty import IBAN

from relances.daemon.errors import LedgerError
from relances.daemon.ledger import infiles
from relances.daemon.ledger.cells import (
    CUSTOMER_LENGTHS,
    PAYMENT_LENGTHS,
    checked_row,
    csv_rows,
    json_text,
    parse_language,
)
from relances.daemon.ledger.kinds import parse_kind, parse_siren, parse_vat
from relances.daemon.ledger.parsing import (
    fold,
    looks_like_date,
    parse_amount,
    parse_bool,
    parse_date,
)

# Header aliases (folded) → field.  French names are the seed's columns.
INVOICE_COLUMNS: dict[str, str] = {
    "code": "customer_code", "customer code": "customer_code", "code client": "customer_code",
    "affilie": "affiliate_code", "affiliate code": "affiliate_code",
    "nom": "customer_name", "customer name": "customer_name", "name": "customer_name",
    "email": "email", "e-mail": "email", "courriel": "email",
    "date fac": "invoice_date", "invoice date": "invoice_date", "date": "invoice_date",
    "n fac": "invoice_number", "invoice number": "invoice_number", "number": "invoice_number",
    "affect": "assignment", "assignment": "assignment",
    "repr": "representative", "representative": "representative",
    "total fac": "total", "total": "total",
    "reste": "remaining", "remaining": "remaining",
    "echeance": "due_date", "due date": "due_date",
    "ech": "payment_method", "payment method": "payment_method",
    "rglmt": "settlement", "settlement": "settlement",
    "n-1": "previous_reminder", "previous reminder": "previous_reminder",
    "relance le": "last_reminded_on", "last reminded on": "last_reminded_on",
    "n": "level", "level": "level",
    "pdf": "pdf_path", "pdf path": "pdf_path",
    # Who the customer is: a SIREN, SIRET or VAT number makes a business of a
    # customer whose kind is not known yet (kinds.implied_kind).
    "siren": "siren", "siret": "siren", "n siren": "siren", "n siret": "siren",
    "tva": "vat_number", "n tva": "vat_number", "tva intracom": "vat_number",
    "vat": "vat_number", "vat number": "vat_number",
    "nature": "kind", "type client": "kind", "customer kind": "kind", "kind": "kind",
}
# Cells the ERP shows but that hold nothing to keep (the "(i)" info icon).
DISPLAY_ONLY = {"info rein", "info", "i"}

CUSTOMER_COLUMNS: dict[str, str] = {
    "code": "code", "code client": "code",
    "iban": "ibans", "ibans": "ibans",
    "affilie": "affiliate_code", "affiliate code": "affiliate_code",
    "nom": "name", "name": "name", "raison sociale": "name",
    "email": "email", "e-mail": "email", "courriel": "email",
    "fax": "fax", "telephone": "phone", "tel": "phone", "phone": "phone",
    "adresse": "address_line1", "adresse 1": "address_line1", "address": "address_line1",
    "address line1": "address_line1", "address line 1": "address_line1",
    "adresse 2": "address_line2", "address line2": "address_line2",
    "address line 2": "address_line2",
    "cp": "postal_code", "code postal": "postal_code", "postal code": "postal_code",
    "ville": "city", "city": "city", "pays": "country", "country": "country",
    "langue": "language", "language": "language",
    "particulier": "is_consumer", "consumer": "is_consumer", "is consumer": "is_consumer",
    "type": "kind", "kind": "kind", "nature": "kind", "type client": "kind",
    "siren": "siren", "siret": "siren", "n siren": "siren", "n siret": "siren",
    "tva": "vat_number", "n tva": "vat_number", "tva intracom": "vat_number",
    "vat": "vat_number", "vat number": "vat_number",
    "opt out": "opted_out", "opted out": "opted_out", "ne pas relancer": "opted_out",
    "politique": "policy", "policy": "policy",
}

PAYMENT_COLUMNS: dict[str, str] = {
    "n fac": "invoice_number", "invoice number": "invoice_number", "facture": "invoice_number",
    "date": "paid_on", "paid on": "paid_on", "date reglement": "paid_on",
    "montant": "amount", "amount": "amount",
    "mode": "method", "method": "method", "rglmt": "method",
    "reference": "reference", "ref": "reference",
}


@dataclass(frozen=True)
class Cells:
    """One input row: its location and its cells by field name."""

    source: str
    line: int | str
    values: dict[str, str]

    @property
    def location(self) -> str:
        """``file:901`` for a line of a table, ``file: record 3`` for JSON."""
        if isinstance(self.line, int):
            return f"{self.source}:{self.line}"
        return f"{self.source}: {self.line}"

    def where(self, field: str, columns: dict[str, str]) -> str:
        return f"{self.location}: column {columns.get(field, field)!r}"

    def get(self, field: str) -> str:
        return self.values.get(field, "").strip()

    def check_lengths(self, columns: dict[str, str], lengths: dict[str, int]) -> None:
        """Refuse a cell longer than the column it is written to."""
        for field, limit in lengths.items():
            if len(text := self.get(field)) > limit:
                raise LedgerError(f"{self.where(field, columns)}: {len(text):,} characters, "
                                  f"more than the {limit} this column takes")


@dataclass(frozen=True)
class InvoiceRow:
    customer_code: str
    customer_name: str
    affiliate_code: str | None
    email: str | None
    number: str
    invoice_date: dt.date
    due_date: dt.date
    total: Decimal
    remaining: Decimal
    payment_method: str | None
    settlement: str | None
    assignment: str | None
    representative: str | None
    level: int
    last_reminded_on: dt.date | None
    pdf_path: str | None
    # business | public | consumer, when the source says; None leaves it as it is.
    customer_kind: str | None = None
    where: str = ""  # "file:line", for what is found wrong after reading
    customer_siren: str | None = None
    customer_vat: str | None = None


@dataclass(frozen=True)
class CustomerRow:
    code: str
    values: dict[str, Any]  # only the columns the file has
    where: str = ""  # "file:line: column 'policy'", for errors found later


@dataclass(frozen=True)
class PaymentRow:
    invoice_number: str
    paid_on: dt.date
    amount: Decimal
    method: str | None
    reference: str
    where: str


def _header(path: Path, reader: Iterator[list[str]],
            aliases: dict[str, str]) -> tuple[list[str | None], dict[str, str]]:
    """The field of each column (None: nothing to keep) and each field's column name."""
    try:
        header = next(reader)
    except StopIteration:
        raise LedgerError(f"{path}:1: the file is empty") from None
    fields: list[str | None] = []
    shown: dict[str, str] = {}
    for position, name in enumerate(header, start=1):
        key = fold(name)
        if not key or key in DISPLAY_ONLY:
            fields.append(None)
            continue
        field = aliases.get(key)
        if field is None:
            raise LedgerError(f"{path}:1: unknown column {name.strip()!r} (column {position})")
        if field in shown:
            raise LedgerError(f"{path}:1: column {name.strip()!r} appears twice")
        fields.append(field)
        shown[field] = name.strip()
    return fields, shown


def _tabular(path: Path, text: str, delimiter: str,
             aliases: dict[str, str]) -> tuple[Iterator[Cells], dict[str, str]]:
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    fields, shown = _header(path, csv_rows(path, reader), aliases)

    def rows() -> Iterator[Cells]:
        for row in csv_rows(path, reader):
            if not any(cell.strip() for cell in row):
                continue
            checked_row(path, reader.line_num, row, fields, shown)
            values = {f: cell for f, cell in zip(fields, row, strict=False) if f is not None}
            yield Cells(str(path), reader.line_num, values)

    return rows(), shown


def _json_rows(path: Path, text: str, key: str,
               aliases: dict[str, str]) -> tuple[Iterator[Cells], dict[str, str]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LedgerError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    except RecursionError:
        raise LedgerError(f"{path}: JSON nested too deep: not an export") from None
    if isinstance(data, dict):
        data = data.get(key)
    if not isinstance(data, list):
        raise LedgerError(f"{path}: expected an array of objects (or {{\"{key}\": [...]}})")
    fields = set(aliases.values())

    def rows() -> Iterator[Cells]:
        for index, item in enumerate(data, start=1):
            where = f"record {index}"
            if not isinstance(item, dict):
                raise LedgerError(f"{path}: {where}: expected an object")
            unknown = sorted(set(item) - fields)
            if unknown:
                raise LedgerError(f"{path}: {where}: unknown field {unknown[0]!r}")
            values = {k: json_text(path, where, k, v) for k, v in item.items()}
            yield Cells(str(path), where, values)

    return rows(), {f: f for f in fields}


def read_cells(path: Path, aliases: dict[str, str],
               json_key: str) -> tuple[Iterator[Cells], dict[str, str]]:
    """Open an import file (:mod:`~relances.daemon.ledger.infiles`) and yield its rows
    as :class:`Cells`."""
    text = infiles.decode(path, infiles.read_bytes(path))
    suffix = path.suffix.lower()
    if suffix == ".json":
        return _json_rows(path, text, json_key, aliases)
    if suffix in {".tsv", ".txt", ".tab"}:
        return _tabular(path, text, "\t", aliases)
    if suffix == ".csv":
        first = text.split("\n", 1)[0]
        delimiter = max((";", ",", "\t"), key=first.count)
        return _tabular(path, text, delimiter, aliases)
    raise LedgerError(f"{path}: unknown file type {suffix!r} (use .tsv, .csv or .json)")


def _cell(cells: Cells, columns: dict[str, str], field: str,
          parse: Callable[[str], Any], *, required: bool = True) -> Any:
    text = cells.get(field)
    if not text:
        if required:
            raise LedgerError(f"{cells.where(field, columns)}: value is missing")
        return None
    try:
        return parse(text)
    except ValueError as exc:
        raise LedgerError(f"{cells.where(field, columns)}: {exc}") from None


def _level(text: str) -> int:
    if text not in {"0", "1", "2", "3"}:
        raise ValueError(f"a level is 0, 1, 2 or 3, not {text!r}")
    return int(text)


def _reminder_date(cells: Cells, columns: dict[str, str]) -> dt.date | None:
    # The seed's export puts the info icon "(i)" under "Relancé le" and the
    # date one column to the left, under "N-1": take whichever holds a date.
    for field in ("last_reminded_on", "previous_reminder"):
        text = cells.get(field)
        if text and looks_like_date(text):
            return parse_date(text)
        if text and field == "previous_reminder" and text not in {"(i)"}:
            raise LedgerError(f"{cells.where(field, columns)}: not a date: {text!r}")
    return None


def _invoice_customer(cells: Cells, columns: dict[str, str]) -> dict[str, Any]:
    """What an invoice row says of its customer's kind and identifiers."""
    ids = {"siren": _cell(cells, columns, "siren", parse_siren, required=False),
           "vat_number": _cell(cells, columns, "vat_number", parse_vat, required=False)}
    return {"customer_kind": _customer_kind(cells, columns, ids),
            "customer_siren": ids["siren"], "customer_vat": ids["vat_number"]}


@functools.lru_cache(maxsize=4096)  # a customer's every invoice row repeats the cell
def parse_emails(text: str) -> str:
    """An email cell as written: addresses separated by ``,`` or ``;``, each a bare
    ``local@domain`` (what the email channel sends to); ValueError otherwise."""
    for address in filter(None, (part.strip() for part in re.split(r"[,;]", text))):
        try:
            parsed = Address(addr_spec=address) if address.isprintable() else None
        except (HeaderParseError, ValueError, IndexError, TypeError):
            parsed = None
        if parsed is None or not parsed.username or not parsed.domain:
            raise ValueError(f"not an email address: {address!r} (write it as name@domain.fr)")
    return text


def _ibans(text: str) -> tuple[str, ...]:
    """The accounts a customer pays from: IBANs separated by commas, semicolons or
    spaces (an IBAN written in groups of four is one IBAN)."""
    found: list[str] = []
    for part in re.split(r"[,;]", text):
        if not part.strip():
            continue
        words = [part] if _iban(part) else part.split()
        for word in words:
            iban = _iban(word)
            if iban is None:
                raise ValueError(f"not a valid IBAN: {word.strip()!r}")
            found.append(iban)
    return tuple(dict.fromkeys(found))


def _iban(text: str) -> str | None:
    try:
        return str(IBAN(text).compact)
    except ValueError:
        return None


_CUSTOMER_PARSERS: dict[str, Callable[[str], Any]] = {
    "language": parse_language, "opted_out": parse_bool, "siren": parse_siren,
    "vat_number": parse_vat, "ibans": _ibans,
}


def _customer_kind(cells: Cells, columns: dict[str, str], values: dict[str, Any]) -> str | None:
    """The kind a row says in words: its kind column, its "particulier" column;
    None when it says nothing (a SIREN or VAT number alone implies a business
    only for a customer of unknown kind: :func:`~relances.daemon.ledger.kinds.implied_kind`)."""
    if cells.get("kind"):
        return str(_cell(cells, columns, "kind", parse_kind))
    if cells.get("is_consumer"):
        consumer = _cell(cells, columns, "is_consumer", parse_bool)
        return "consumer" if consumer else "business"
    return None


def customer_rows(path: Path) -> list[CustomerRow]:
    """Every customer of an import file, validated."""
    cells_iter, columns = read_cells(path, CUSTOMER_COLUMNS, "customers")
    rows: list[CustomerRow] = []
    seen: dict[str, int | str] = {}
    for cells in cells_iter:
        code = _cell(cells, columns, "code", str)
        cells.check_lengths(columns, CUSTOMER_LENGTHS)
        if (earlier := seen.setdefault(code, cells.line)) != cells.line:
            raise LedgerError(f"{cells.where('code', columns)}: customer {code} already appears "
                              f"on {'line ' if isinstance(earlier, int) else ''}{earlier}")
        values: dict[str, Any] = {}
        for field in cells.values:
            if field in {"code", "kind", "is_consumer"}:
                continue
            text = cells.get(field)
            parse = _CUSTOMER_PARSERS.get(field)
            if field == "email":  # an empty cell clears the address
                values[field] = _cell(cells, columns, field, parse_emails, required=False)
            elif parse is not None:
                values[field] = _cell(cells, columns, field, parse, required=False)
                if values[field] is None:
                    del values[field]
            else:
                values[field] = text or None
        kind = _customer_kind(cells, columns, values)
        if kind is not None:
            values["kind"] = kind
        if "name" in values and not values["name"]:
            raise LedgerError(f"{cells.where('name', columns)}: value is missing")
        rows.append(CustomerRow(code, values, cells.where("policy", columns)))
    return rows


def payment_rows(path: Path) -> list[PaymentRow]:
    """Every payment of an import file, validated."""
    cells_iter, columns = read_cells(path, PAYMENT_COLUMNS, "payments")
    rows: list[PaymentRow] = []
    for cells in cells_iter:
        cells.check_lengths(columns, PAYMENT_LENGTHS)
        amount = _cell(cells, columns, "amount", parse_amount)
        if amount <= 0:
            raise LedgerError(f"{cells.where('amount', columns)}: a payment must be positive")
        rows.append(PaymentRow(
            invoice_number=_cell(cells, columns, "invoice_number", str),
            paid_on=_cell(cells, columns, "paid_on", parse_date),
            amount=amount,
            method=cells.get("method") or None,
            reference=cells.get("reference"),
            where=cells.location,
        ))
    return rows
