"""The ERP's export of open invoices, read row by row into validated invoice rows.

:func:`invoice_rows` reads the seed's TSV, CSV or JSON once; ordinary rows
take a fast path, anything unusual the careful one of
:mod:`relances.daemon.ledger.readers`, with the same messages.  Each
validated row goes to an :class:`~relances.daemon.ledger.rowstore.InvoiceRows`,
so memory stays flat however long the export.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from sys import intern
from typing import TYPE_CHECKING, Any

from relances.daemon.errors import LedgerError
from relances.daemon.ledger import infiles
from relances.daemon.ledger.cells import CONTROL, INVOICE_LENGTHS, checked_row, csv_rows
from relances.daemon.ledger.parsing import (
    date_or_none,
    parse_amount,
    parse_date,
    plain_amount,
)
from relances.daemon.ledger.readers import (
    INVOICE_COLUMNS,
    Cells,
    InvoiceRow,
    _cell,
    _header,
    _invoice_customer,
    _level,
    _reminder_date,
    parse_emails,
    read_cells,
)
from relances.daemon.ledger.rowstore import (
    _LINE,
    _NUMBER,
    _ROW_FIELDS,
    InvoiceRows,
)

if TYPE_CHECKING:
    from relances.daemon.ledger.book import InvoiceCopies


def invoice_rows(path: Path, copies: InvoiceCopies | None = None) -> InvoiceRows:
    """Every invoice of an import file, validated; raises on the first bad cell.

    The file is read once, row by row, and each validated row goes to the
    returned :class:`InvoiceRows` (a temporary file), so that memory stays
    flat however long the export.  With ``copies``, a PDF cell naming a file
    outside the invoices folder is refused.
    """
    rows = InvoiceRows(str(path))
    try:
        _read_invoices(path, rows, copies)
    except BaseException:
        rows.close()
        raise
    return rows


_TABLES = {".tsv": "\t", ".txt": "\t", ".tab": "\t", ".csv": ""}
_LEVELS = {"": 0, "0": 0, "1": 1, "2": 2, "3": 3}


_PDF = _ROW_FIELDS.index("pdf_path")


def _copy_checked(record: tuple[Any, ...], source: str, columns: dict[str, str],
                  copies: InvoiceCopies | None) -> tuple[Any, ...]:
    """The record, unless its PDF cell names a file outside the invoices folder."""
    refusal = copies.refusal(record[_PDF]) if copies and record[_PDF] else None
    if refusal is not None:
        line = record[_LINE]
        where = f"{source}:{line}" if isinstance(line, int) else f"{source}: {line}"
        raise LedgerError(f"{where}: column {columns.get('pdf_path', 'pdf_path')!r}: {refusal}")
    return record


def _read_invoices(path: Path, rows: InvoiceRows, copies: InvoiceCopies | None) -> None:
    delimiter = _TABLES.get(path.suffix.lower())
    if delimiter is None:  # JSON, or a file type read_cells refuses
        cells_iter, columns = read_cells(path, INVOICE_COLUMNS, "invoices")
        for cells in cells_iter:
            rows.append(_copy_checked(_record(_invoice_row(cells, columns, rows), cells.line),
                                      str(path), columns, copies))
        return
    with _open_text(path) as text:
        if not delimiter:
            first = text.readline()
            text.seek(0)
            delimiter = max((";", ",", "\t"), key=first.count)
        reader = csv.reader(text, delimiter=delimiter)
        fields, columns = _header(path, csv_rows(path, reader), INVOICE_COLUMNS)
        fast = _fast_reader(fields, columns)
        source, width = str(path), len(fields)
        for raw in csv_rows(path, reader):
            line = reader.line_num
            record = fast(raw, line) if len(raw) == width else None
            if record is not None:
                earlier = rows.claim(record[_NUMBER])
                if earlier is not None:
                    raise LedgerError(f"{source}:{line}: column "
                                      f"{columns.get('invoice_number', 'invoice_number')!r}: "
                                      f"invoice {record[_NUMBER]} already appears on line "
                                      f"{earlier}")
                rows.append(_copy_checked(record, source, columns, copies))
                continue
            # Anything out of the ordinary: the general rules, and their messages.
            if not any(cell.strip() for cell in raw):
                continue
            checked_row(path, line, raw, fields, columns)
            values = {f: cell for f, cell in zip(fields, raw, strict=False) if f is not None}
            cells = Cells(source, line, values)
            rows.append(_copy_checked(_record(_invoice_row(cells, columns, rows), line),
                                      source, columns, copies))


def _invoice_row(cells: Cells, columns: dict[str, str], rows: InvoiceRows) -> InvoiceRow:
    """One row by the general rules: the first bad cell raises."""
    number = _cell(cells, columns, "invoice_number", str)
    cells.check_lengths(columns, INVOICE_LENGTHS)
    earlier = rows.claim(number)
    if earlier is not None:
        raise LedgerError(f"{cells.where('invoice_number', columns)}: invoice {number} "
                          f"already appears on line {earlier}")
    total = _cell(cells, columns, "total", parse_amount)
    remaining = _cell(cells, columns, "remaining", parse_amount)
    if total < 0:
        raise LedgerError(f"{cells.where('total', columns)}: a negative total {total} (a credit "
                          "note is not reminded: leave it out of the export)")
    if remaining < 0:
        raise LedgerError(f"{cells.where('remaining', columns)}: negative amount {remaining}")
    if remaining > total:
        raise LedgerError(f"{cells.where('remaining', columns)}: {remaining} remaining is "
                          f"more than the invoice's total {total}")
    return InvoiceRow(
        customer_code=_cell(cells, columns, "customer_code", str),
        customer_name=cells.get("customer_name"),
        affiliate_code=cells.get("affiliate_code") or None,
        email=_cell(cells, columns, "email", parse_emails, required=False),
        number=number,
        invoice_date=_cell(cells, columns, "invoice_date", parse_date),
        due_date=_cell(cells, columns, "due_date", parse_date),
        total=total,
        remaining=remaining,
        payment_method=cells.get("payment_method") or None,
        settlement=cells.get("settlement") or None,
        assignment=cells.get("assignment") or None,
        representative=cells.get("representative") or None,
        level=_cell(cells, columns, "level", _level, required=False) or 0,
        last_reminded_on=_reminder_date(cells, columns),
        pdf_path=cells.get("pdf_path") or None,
        where=cells.location,
        **_invoice_customer(cells, columns),
    )


def _fast_reader(fields: list[str | None],
                 columns: dict[str, str]) -> Callable[[list[str], int], tuple[Any, ...] | None]:
    """What nearly every row of an export takes: its record straight from its cells.

    Returns None for a row it cannot vouch for (a blank row, a cell missing,
    anything :func:`_invoice_row` would refuse or read differently): that row
    then goes through the general rules, which raise their own messages.
    """
    width = len(fields)

    def at(field: str) -> int:
        return fields.index(field) if field in fields else width  # width: an empty cell

    (code, name, affiliate, email, number, invoice_date, due_date, total, remaining, method,
     settlement, assignment, representative, level, reminded, previous, pdf) = (at(f) for f in (
        "customer_code", "customer_name", "affiliate_code", "email", "invoice_number",
        "invoice_date", "due_date", "total", "remaining", "payment_method", "settlement",
        "assignment", "representative", "level", "last_reminded_on", "previous_reminder",
        "pdf_path"))
    described = [at(f) for f in ("siren", "vat_number", "kind") if f in fields]
    levels, plain = _LEVELS, plain_amount
    limits = [(fields.index(f), limit) for f, limit in INVOICE_LENGTHS.items() if f in fields]

    def fast(raw: list[str], line: int) -> tuple[Any, ...] | None:
        joined = "".join(raw)  # isprintable() first: ten times quicker than the expression
        if not joined.isprintable() and CONTROL.search(joined):
            return None
        for index, limit in limits:
            if len(raw[index]) > limit:
                return None
        raw.append("")
        number_text = raw[number].strip()
        code_text = raw[code].strip()
        if not number_text or not code_text:
            return None
        level_value = levels.get(raw[level].strip())
        if level_value is None:
            return None
        try:  # amounts as the Decimal's text and in cents, to compare
            total_text, total_cents = plain(raw[total].strip()) or _amount(raw[total].strip())
            remaining_text, remaining_cents = (plain(raw[remaining].strip())
                                               or _amount(raw[remaining].strip()))
            invoiced = parse_date(raw[invoice_date].strip())
            due = parse_date(raw[due_date].strip())
            parse_emails(raw[email].strip())
        except ValueError:
            return None
        if total_cents < 0 or remaining_cents < 0 or remaining_cents > total_cents:
            return None
        text = raw[reminded].strip()
        last = date_or_none(text) if text else None
        if last is None:
            text = raw[previous].strip()
            if text:
                last = date_or_none(text)
                if last is None and text != "(i)":
                    return None
        kind = siren = vat = None
        if described and any(raw[i].strip() for i in described):
            values = {f: cell for f, cell in zip(fields, raw, strict=False) if f is not None}
            try:
                customer = _invoice_customer(Cells("", line, values), columns)
            except LedgerError:
                return None
            kind, siren = customer["customer_kind"], customer["customer_siren"]
            vat = customer["customer_vat"]
        # The texts a customer's every row repeats are shared (interned): fewer
        # objects to keep, to write and to read back.
        return (intern(code_text), intern(raw[name].strip()),
                intern(raw[affiliate].strip()) or None, intern(raw[email].strip()) or None,
                number_text, invoiced.toordinal(), due.toordinal(), total_text,
                remaining_text, intern(raw[method].strip()) or None,
                intern(raw[settlement].strip()) or None, intern(raw[assignment].strip()) or None,
                intern(raw[representative].strip()) or None, level_value,
                last.toordinal() if last else None, raw[pdf].strip() or None, kind, line, siren,
                vat)

    return fast


def _amount(text: str) -> tuple[str, Decimal]:
    """What :func:`plain_amount` gives, for any amount :func:`parse_amount` reads."""
    value = parse_amount(text)
    return str(value), value * 100


def _record(row: InvoiceRow, line: int | str) -> tuple[Any, ...]:
    """A row as :class:`InvoiceRows` keeps it."""
    return (row.customer_code, row.customer_name, row.affiliate_code, row.email, row.number,
            row.invoice_date.toordinal(), row.due_date.toordinal(), str(row.total),
            str(row.remaining), row.payment_method, row.settlement, row.assignment,
            row.representative, row.level,
            row.last_reminded_on.toordinal() if row.last_reminded_on else None, row.pdf_path,
            row.customer_kind, line, row.customer_siren, row.customer_vat)


def _open_text(path: Path) -> io.TextIOWrapper:
    """The file as text, decoded as it is read: UTF-8 (with or without a BOM) when
    the whole file is UTF-8, else cp1252, what French spreadsheets save by default."""
    handle = infiles.open_binary(path)
    try:
        encoding = infiles.encoding_of(path, handle)
    except BaseException:
        handle.close()
        raise
    return io.TextIOWrapper(handle, encoding=encoding, newline="\n")
