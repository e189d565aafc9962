"""What a file of the books is, from its content: so a dropped file finds its import.

A Factur-X invoice is a PDF; a CDAR status message is XML whose root is
``rsm:CrossDomainAcknowledgementAndResponse``; a FEC starts with its 18 headers; the other
tables (TSV, CSV, JSON) are told apart by the columns they name: an
invoice export has a Reste or a total, a payments file an amount, a
customers file neither and no invoice number.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from relances.daemon.errors import LedgerError
from relances.daemon.ledger import infiles
from relances.daemon.ledger.cdar import looks_like_cdar
from relances.daemon.ledger.facturx import looks_like_pdf
from relances.daemon.ledger.fec_checks import looks_like_fec
from relances.daemon.ledger.parsing import fold
from relances.daemon.ledger.readers import CUSTOMER_COLUMNS, INVOICE_COLUMNS, PAYMENT_COLUMNS

SOURCES = ("invoices", "customers", "payments", "fec", "facturx", "cdar")
HEAD = 64 * 1024


def _fields(names: list[str], aliases: dict[str, str]) -> set[str]:
    return {aliases[key] for key in map(fold, names) if key in aliases}


def _table_source(names: list[str]) -> str | None:
    invoice = _fields(names, INVOICE_COLUMNS)
    if "invoice_number" in invoice and invoice & {"remaining", "total"}:
        return "invoices"
    payment = _fields(names, PAYMENT_COLUMNS)
    if {"invoice_number", "amount"} <= payment:
        return "payments"
    customer = _fields(names, CUSTOMER_COLUMNS)
    if "code" in customer and "invoice_number" not in invoice:
        return "customers"
    return None


def _header(text: str, suffix: str) -> list[str]:
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            return []
        if isinstance(data, dict):
            for key in ("invoices", "payments", "customers"):
                if isinstance(data.get(key), list):
                    data = data[key]
                    break
        first = data[0] if isinstance(data, list) and data else None
        return list(first) if isinstance(first, dict) else []
    line = text.split("\n", 1)[0]
    delimiter = "\t" if suffix in {".tsv", ".txt", ".tab"} else max((";", ",", "\t"), key=line.count)
    return next(csv.reader(io.StringIO(line), delimiter=delimiter), [])


def source_of(path: Path) -> str:
    """``invoices``, ``customers``, ``payments``, ``fec``, ``facturx`` or ``cdar``;
    LedgerError if none."""
    with infiles.open_binary(path) as stream:
        head = infiles.read_up_to(stream, path, HEAD)
    if looks_like_pdf(head):
        return "facturx"
    if looks_like_cdar(head):
        return "cdar"
    first = head.split(b"\n", 1)[0]
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = first.decode("cp1252", errors="replace")  # what French spreadsheets save
    if looks_like_fec(text):
        return "fec"
    suffix = path.suffix.lower()
    if suffix in {".tsv", ".txt", ".tab", ".csv", ".json"}:
        whole = infiles.read_bytes(path).decode("utf-8-sig", errors="replace") \
            if suffix == ".json" else text
        source = _table_source(_header(whole, suffix))
        if source is not None:
            return source
    raise LedgerError(f"{path}: not a file Relances imports (an export of invoices, customers "
                      "or payments as TSV, CSV or JSON, a FEC, a Factur-X PDF or a CDAR status)")
