"""Reading Factur-X invoices: a PDF carrying its data as UN/CEFACT CII XML.

Read, from each PDF: the embedded ``factur-x.xml`` (or ZUGFeRD 2's
``zugferd-invoice.xml``, the same CII), once it passes the ``factur-x``
library's XSD for the profile it declares (MINIMUM, BASIC WL, BASIC,
EN 16931, EXTENDED).  From it: number, issue date, due date (else the issue
date + ``payment_terms_days``), grand total tax included, amount due
(``DuePayableAmount``, else the total minus ``TotalPrepaidAmount``), and the
buyer: name, the seller's customer number (``ram:ID``), SIREN or SIRET,
VAT number, email, postal address.  The customer code is the buyer's
``ram:ID``, else ``SIREN-<siren>``, else ``TVA-<vat>``; never a name.

Refused, with one :class:`LedgerError` line naming the file and what is
wrong: not a PDF, a PDF over 50 MB, no Factur-X data, an XML over 5 MB, not
well formed, with a DTD, or failing the schema check; a credit note (381
and the like: nothing to remind, it cancels an invoice) or another
non-invoice type code; an invoice not in euros; a missing number, date or
total; a negative or non-numeric amount; an invalid SIREN, SIRET, VAT
number or email; a buyer without any identifier.

XML safety: every file is hostile.  The XML is parsed with entity
resolution, DTD loading and network access off and lxml's size limits on,
and a document with a ``<!DOCTYPE>`` (the vehicle of external entities and
"billion laughs") is refused before anything is read from it.  The library
parses the attachment with lxml's default parser: during the call that
default is our safe parser (lxml keeps it per thread).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import facturx
from lxml import etree
from stdnum import exceptions as stdnum_errors
from stdnum.eu import vat
from stdnum.fr import siren, siret

from relances.daemon.errors import LedgerError
from relances.daemon.ledger import infiles
from relances.daemon.ledger.parsing import CENT
from relances.daemon.ledger.readers import InvoiceRow

log = logging.getLogger(__name__)

MAX_PDF_BYTES = 50 * 1024 * 1024
MAX_XML_BYTES = 5 * 1024 * 1024
XML_FILENAMES = ["factur-x.xml", "zugferd-invoice.xml"]  # matched case-insensitively
LEVELS = ("minimum", "basicwl", "basic", "en16931", "extended")
# UNTDID 1001: commercial, prepayment and self-billed invoices are owed.
INVOICE_TYPES = {"380", "386", "389"}
CREDIT_NOTE_TYPES = {"81", "83", "261", "262", "381", "396", "532"}
NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
}
ROOT_TAG = f"{{{NS['rsm']}}}CrossIndustryInvoice"
_TRADE = "rsm:SupplyChainTradeTransaction"
SETTLEMENT = f"{_TRADE}/ram:ApplicableHeaderTradeSettlement"
TOTALS = f"{SETTLEMENT}/ram:SpecifiedTradeSettlementHeaderMonetarySummation"
BUYER = f"{_TRADE}/ram:ApplicableHeaderTradeAgreement/ram:BuyerTradeParty"
# Longest value kept per field (the database's columns).
LIMITS = {"number": 64, "code": 64, "name": 200, "email": 254, "address_line1": 200,
          "address_line2": 200, "postal_code": 20, "city": 100, "country": 100}
ADDRESS = {"address_line1": "LineOne", "address_line2": "LineTwo",
           "postal_code": "PostcodeCode", "city": "CityName", "country": "CountryID"}
_PDF_HEADER = re.compile(rb"\s*%PDF-\d")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass(frozen=True)
class FacturxInvoice:
    row: InvoiceRow
    customer: dict[str, Any]  # the Customer columns the buyer gives, only those present
    path: Path
    level: str  # minimum, basicwl, basic, en16931, extended


def looks_like_pdf(head: bytes) -> bool:
    """True when the bytes start like a PDF (``%PDF-1.7``), leading whitespace allowed."""
    return _PDF_HEADER.match(head[:1024]) is not None


def facturx_files(paths: Sequence[Path]) -> list[Path]:
    """Files as given, and the ``*.pdf`` under folders (sorted; hidden entries and
    symlinked folders skipped).  A path that does not exist raises LedgerError."""
    found: dict[Path, None] = {}
    for path in paths:
        if path.is_dir():
            found.update(dict.fromkeys(_pdfs_under(path)))
        elif path.exists():
            found[path] = None
        else:
            raise LedgerError(f"{path}: no such file or folder")
    return list(found)


def _pdfs_under(folder: Path) -> list[Path]:
    pdfs: list[Path] = []
    for root, dirs, files in os.walk(folder):  # does not follow symlinked folders
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        pdfs.extend(Path(root, f) for f in files
                    if f.lower().endswith(".pdf") and not f.startswith("."))
    return sorted(pdfs)


def read_facturx(path: Path, *, payment_terms_days: int = 30) -> FacturxInvoice:
    """Read one Factur-X PDF; raises LedgerError with one line naming the file."""
    if payment_terms_days < 0:
        raise ValueError(f"payment_terms_days must be positive or zero, not {payment_terms_days}")
    where = str(path)
    pdf = _read_pdf(path)
    with _safe_default_parser():
        root = _parse_xml(where, _extract_xml(where, pdf))
        level = _check_schema(where, root)
    row, customer = _invoice(where, root, payment_terms_days)
    log.info("%s: Factur-X %s invoice %s for %s, %s due on %s", where, level, row.number,
             row.customer_code, row.remaining, row.due_date.isoformat())
    return FacturxInvoice(row=row, customer=customer, path=path, level=level)


def _read_pdf(path: Path) -> bytes:
    with infiles.open_binary(path) as f:
        size = os.fstat(f.fileno()).st_size
        if size > MAX_PDF_BYTES:
            raise LedgerError(f"{path}: the file is {_mb(size)}, more than the "
                              f"{_mb(MAX_PDF_BYTES)} a Factur-X PDF may be")
        data = infiles.read_up_to(f, path, MAX_PDF_BYTES + 1)
    if len(data) > MAX_PDF_BYTES:
        raise LedgerError(f"{path}: the file is more than the {_mb(MAX_PDF_BYTES)} a Factur-X PDF may be")
    if not looks_like_pdf(data):
        raise LedgerError(f"{path}: not a PDF file (a Factur-X invoice is a PDF)")
    return data


def _safe_parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


@contextmanager
def _safe_default_parser() -> Iterator[None]:
    """Make the safe parser lxml's default, for this thread, while the library works."""
    previous = etree.get_default_parser()
    etree.set_default_parser(_safe_parser())
    try:
        yield
    finally:
        etree.set_default_parser(previous)


def _mb(size: int) -> str:
    return f"{round(size / (1024 * 1024), 1):g} MB"


class _ThreadRecords(logging.Handler):
    """The library's warnings logged by this thread: why it skipped an attachment."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.messages.append(record.getMessage())


def _extract_xml(where: str, pdf: bytes) -> bytes:
    # check_xsd=False: the library would skip an invalid XML silently, and we
    # want to say why it is refused (see _check_schema).
    library_log, records = logging.getLogger("factur-x"), _ThreadRecords()
    library_log.addHandler(records)
    try:
        _name, xml = facturx.get_xml_from_pdf(pdf, check_xsd=False, filenames=list(XML_FILENAMES))
    except Exception as exc:  # the library and pypdf raise anything, Exception included
        raise LedgerError(f"{where}: cannot read this PDF: {_short(exc)}") from None
    finally:
        library_log.removeHandler(records)
    if not xml:
        # Its last warning only says nothing was found; an earlier one says why.
        why = [m for m in records.messages if not m.startswith("No valid")]
        detail = f" ({_one_line(why[0])})" if why else ""
        raise LedgerError(f"{where}: no Factur-X data in this PDF{detail}")
    if len(xml) > MAX_XML_BYTES:
        raise LedgerError(f"{where}: the Factur-X XML is {_mb(len(xml))}, more than the "
                          f"{_mb(MAX_XML_BYTES)} an invoice may be")
    return bytes(xml)


def _parse_xml(where: str, xml: bytes) -> Any:
    try:
        root = etree.fromstring(xml, _safe_parser())
    except etree.XMLSyntaxError as exc:
        raise LedgerError(f"{where}: the Factur-X XML is not well formed: {_short(exc)}") from None
    info = root.getroottree().docinfo
    if info.doctype or info.internalDTD is not None or info.externalDTD is not None:
        raise LedgerError(f"{where}: the Factur-X XML declares a DTD (<!DOCTYPE>), which an "
                          f"invoice never needs: refused, its entities are not read")
    if root.tag != ROOT_TAG:
        raise LedgerError(f"{where}: the embedded XML is not a CII invoice (rsm:CrossIndustryInvoice)")
    return root


def _check_schema(where: str, root: Any) -> str:
    """The Factur-X profile the XML declares, once it passes that profile's XSD."""
    try:
        level = str(facturx.get_level(root, flavor="factur-x"))
    except Exception as exc:
        raise LedgerError(f"{where}: the Factur-X XML does not say its profile: {_short(exc)}") from None
    if level not in LEVELS:
        raise LedgerError(f"{where}: Factur-X profile {level!r} is not read "
                          f"(expected one of {', '.join(LEVELS)})")
    try:
        facturx.xml_check_xsd(root, flavor="factur-x", level=level)
    except Exception as exc:
        raise LedgerError(f"{where}: the Factur-X XML does not pass the schema check "
                          f"({level}): {_short(exc)}") from None
    return level


def _short(exc: BaseException) -> str:
    """An exception as one short line: lxml's own error when the library wrapped one."""
    cause = exc.__cause__ if isinstance(exc.__cause__, etree.Error) else exc
    return _one_line(str(cause) or type(cause).__name__)


def _one_line(text: str, limit: int = 160) -> str:
    """One line, namespace URIs left out (``{urn:…}TypeCode`` → ``TypeCode``), shortened."""
    text = " ".join(re.sub(r"\{[^}]*\}", "", text).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _invoice(where: str, root: Any, payment_terms_days: int) -> tuple[InvoiceRow, dict[str, Any]]:
    number = _limited(where, "number", "ram:ExchangedDocument/ram:ID",
                      _text(root, "rsm:ExchangedDocument/ram:ID"))
    if not number:
        raise LedgerError(f"{where}: rsm:ExchangedDocument/ram:ID: the invoice number is missing")
    _check_type(where, _text(root, "rsm:ExchangedDocument/ram:TypeCode"))
    currency = _text(root, f"{SETTLEMENT}/ram:InvoiceCurrencyCode")
    if currency and currency.upper() != "EUR":
        raise LedgerError(f"{where}: ram:InvoiceCurrencyCode: the invoice is in {currency[:8]}; "
                          f"only invoices in euros (EUR) are read")
    issued = _date(where, root, "rsm:ExchangedDocument/ram:IssueDateTime")
    if issued is None:
        raise LedgerError(f"{where}: ram:IssueDateTime: the invoice date is missing")
    due = _date(where, root, f"{SETTLEMENT}/ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime")
    total = _amount(where, root, "GrandTotalAmount")
    if total is None:
        raise LedgerError(f"{where}: ram:GrandTotalAmount: the invoice's total is missing")
    remaining = _amount(where, root, "DuePayableAmount")
    if remaining is None:
        remaining = total - (_amount(where, root, "TotalPrepaidAmount") or Decimal(0))
        if remaining < 0:
            raise LedgerError(f"{where}: ram:TotalPrepaidAmount is more than the total {total}")
    code, customer = _buyer(where, root)
    row = InvoiceRow(
        customer_code=code, customer_name=customer.get("name", ""), affiliate_code=None,
        email=customer.get("email"), number=number, invoice_date=issued,
        due_date=due or issued + dt.timedelta(days=payment_terms_days),
        total=total, remaining=remaining, payment_method=None, settlement=None,
        assignment=None, representative=None, level=0, last_reminded_on=None, pdf_path=None,
        customer_kind=None, where=where)  # its SIREN or VAT number implies a business
    return row, customer


def _check_type(where: str, code: str | None) -> None:
    if code in INVOICE_TYPES:
        return
    if code in CREDIT_NOTE_TYPES:
        raise LedgerError(f"{where}: a credit note (ram:TypeCode {code}), not an invoice: credit "
                          f"notes are not imported, enter the credit on the invoice it corrects")
    raise LedgerError(f"{where}: ram:TypeCode {(code or '')[:8]!r}: only invoices (380), "
                      f"prepayment invoices (386) and self-billed invoices (389) are read")


def _text(node: Any, path: str) -> str | None:
    """The first element's text at path, whitespace collapsed; None when absent or empty."""
    found = node.find(path, NS)
    if found is None or found.text is None:
        return None
    return " ".join(found.text.split()) or None


def _limited(where: str, field: str, element: str, value: str | None) -> str | None:
    if value is not None and len(value) > LIMITS[field]:
        raise LedgerError(f"{where}: {element}: {len(value)} characters, more than the "
                          f"{LIMITS[field]} kept")
    return value


def _date(where: str, root: Any, path: str) -> dt.date | None:
    node = root.find(f"{path}/udt:DateTimeString", NS)
    element = path.rsplit("/", 1)[-1]
    if node is None or not (node.text or "").strip():
        return None
    text, form = node.text.strip(), node.get("format", "102")
    try:
        if form != "102" or not re.fullmatch(r"\d{8}", text):
            raise ValueError
        return dt.datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        raise LedgerError(f"{where}: {element}: {text[:20]!r} is not a date "
                          f"(format 102, AAAAMMJJ, expected)") from None


def _amount(where: str, root: Any, name: str) -> Decimal | None:
    text = _text(root, f"{TOTALS}/ram:{name}")
    if text is None:
        return None
    try:
        value = Decimal(text).quantize(CENT, rounding=ROUND_HALF_UP)  # too many digits: raises
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite():
        raise LedgerError(f"{where}: ram:{name}: {text[:20]!r} is not an amount")
    if value < 0:
        raise LedgerError(f"{where}: ram:{name}: negative amount {value}")
    return abs(value)  # -0.00 → 0.00


def _buyer(where: str, root: Any) -> tuple[str, dict[str, Any]]:
    """The customer code and the Customer columns (a SIREN or VAT number among them
    makes a customer of unknown kind a business)."""
    buyer = root.find(BUYER, NS)
    if buyer is None:
        raise LedgerError(f"{where}: ram:BuyerTradeParty is missing")
    element = "ram:BuyerTradeParty"
    customer: dict[str, Any] = {}
    name = _limited(where, "name", f"{element}/ram:Name", _text(buyer, "ram:Name"))
    email = _email(where, buyer)
    customer.update({k: v for k, v in (("name", name), ("email", email)) if v})
    for field, tag in ADDRESS.items():
        path = f"ram:PostalTradeAddress/ram:{tag}"
        value = _limited(where, field, f"{element}/{path}", _text(buyer, path))
        if value:
            customer[field] = value
    company, vat_number = _siren(where, buyer), _vat(where, buyer)
    customer.update({k: v for k, v in (("siren", company), ("vat_number", vat_number)) if v})
    # Never a code made from a name: two customers of the same name would merge.
    code = (_limited(where, "code", f"{element}/ram:ID", _text(buyer, "ram:ID"))
            or (company and f"SIREN-{company}") or (vat_number and f"TVA-{vat_number}"))
    if not code:
        raise LedgerError(f"{where}: the buyer has no identifier (ram:BuyerTradeParty has no "
                          f"ram:ID, SIREN or VAT number): refused rather than matched on a name")
    return code, customer


def _email(where: str, buyer: Any) -> str | None:
    node = buyer.find("ram:URIUniversalCommunication/ram:URIID", NS)
    if node is None or node.get("schemeID", "EM") != "EM" or not (node.text or "").strip():
        return None
    address = node.text.strip()
    if len(address) > LIMITS["email"] or not _EMAIL.fullmatch(address):
        raise LedgerError(f"{where}: ram:BuyerTradeParty/ram:URIUniversalCommunication/ram:URIID: "
                          f"{address[:60]!r} is not an email address")
    return str(address)


def _siren(where: str, buyer: Any) -> str | None:
    """The SIREN of ``SpecifiedLegalOrganization/ID`` (scheme 0002 SIREN, 0009 SIRET,
    or none given); another scheme is a foreign registration and is left out."""
    node = buyer.find("ram:SpecifiedLegalOrganization/ram:ID", NS)
    if node is None or not (node.text or "").strip():
        return None
    scheme, text = node.get("schemeID"), node.text.strip()
    digits = "".join(text.split())
    if scheme not in (None, "0002", "0009") or (scheme is None and len(digits) not in (9, 14)):
        return None
    element = "ram:BuyerTradeParty/ram:SpecifiedLegalOrganization/ram:ID"
    try:
        if len(digits) == 14:
            return str(siret.validate(digits))[:9]
        return str(siren.validate(digits))
    except stdnum_errors.ValidationError:
        raise LedgerError(f"{where}: {element}: {text[:20]!r} is not a valid SIREN or SIRET") from None


def _vat(where: str, buyer: Any) -> str | None:
    for node in buyer.findall("ram:SpecifiedTaxRegistration/ram:ID", NS):
        text = (node.text or "").strip()
        if node.get("schemeID") != "VA" or not text:
            continue
        try:
            return str(vat.validate(text))
        except stdnum_errors.ValidationError:
            raise LedgerError(f"{where}: ram:BuyerTradeParty/ram:SpecifiedTaxRegistration/ram:ID: "
                              f"{text[:20]!r} is not a valid intra-EU VAT number") from None
    return None
