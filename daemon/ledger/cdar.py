"""Reading e-invoicing life-cycle statuses: CDAR messages (UN/CEFACT D22B
CrossDomainAcknowledgementAndResponse, as France's e-invoicing platforms
exchange them, "CDV").

No schema of the message is published on the package registries, so the
reader follows the element paths of the specification (the FNFE-MPE's
``BR-FR-CDV`` rules) and refuses what does not fit them.  Read, in the
``rsm`` / ``ram`` namespaces of D22B:

- the root ``rsm:CrossDomainAcknowledgementAndResponse``;
- ``rsm:ExchangedDocument/ram:ID`` (the message's id, MDT-4),
  ``ram:IssueDateTime/udt:DateTimeString`` (when the status was issued,
  MDG-4; formats 102, 203, 204 and 205) and
  ``ram:IssuerTradeParty/ram:RoleCode`` (who issued it: ``SE`` the seller,
  ``BY`` the buyer…, MDT-40);
- for each ``rsm:AcknowledgementDocument/ram:ReferenceReferencedDocument``:
  ``ram:IssuerAssignedID`` (the invoice's number, MDT-87),
  ``ram:ProcessConditionCode`` (the status, MDT-105: 200 to 601),
  ``ram:IssuerTradeParty/ram:GlobalID[@schemeID='0002']`` (the seller's
  SIREN, MDT-129), and in ``ram:SpecifiedDocumentStatus`` the reason
  (``ram:ReasonCode``, MDT-113, and the free ``ram:Reason``) and the amounts
  cashed (``ram:SpecifiedDocumentCharacteristic`` whose ``ram:TypeCode`` is
  ``MEN``, ``ram:ValueAmount``, MDT-215).

Refused, with one :class:`LedgerError` line naming the file, the XML line and
the element: a file over 5 MB, a DTD, XML that is not well-formed or not a
CDAR, a missing message id, date, invoice number or status, a status code
outside the specification's list, a malformed date or amount.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from lxml import etree

from relances.daemon import safexml
from relances.daemon.errors import LedgerError
from relances.daemon.ledger import infiles

NAMESPACE = "urn:un:unece:uncefact:data:standard:CrossDomainAcknowledgementAndResponse:100"
NS = {"rsm": NAMESPACE,
      "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
      "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
      "qdt": "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"}
MAX_CDAR_BYTES = 5 * 1024 * 1024
ROOT = "CrossDomainAcknowledgementAndResponse"
# BR-FR-CDV-CL-06: the statuses an invoice may have.
CODES = frozenset(("200", "201", "202", "203", "204", "205", "206", "207", "208", "209", "210",
                   "211", "212", "213", "214", "220", "221", "224", "225", "226", "227", "228",
                   "250", "251", "300", "301", "400", "401", "500", "501", "601"))
LABELS = {"200": "Déposée", "201": "Émise par la plateforme", "202": "Reçue par la plateforme",
          "203": "Mise à disposition", "204": "Prise en charge", "205": "Approuvée",
          "206": "Approuvée partiellement", "207": "En litige", "208": "Suspendue",
          "209": "Complétée", "210": "Refusée", "211": "Paiement transmis", "212": "Encaissée",
          "213": "Rejetée", "214": "Visée"}
_FORMATS = {"102": "%Y%m%d", "203": "%Y%m%d%H%M", "204": "%Y%m%d%H%M%S"}
_ZONED = re.compile(r"(\d{12})([+-]\d{4})")  # format 205: CCYYMMDDHHMM and ±HHMM
_AMOUNT = re.compile(r"-?\d{1,17}(?:\.\d{1,2})?")
MAX_ID = 100
MAX_NUMBER = 64  # invoices.number
MAX_REASON = 240


@dataclass(frozen=True)
class Status:
    """One invoice's status, as a message reported it."""

    message_id: str
    invoice_number: str
    code: str
    issued_at: dt.datetime  # aware
    issuer_role: str  # SE: the seller's own system
    seller_siren: str | None
    reason: str | None
    amount: Decimal | None  # the amounts cashed (MEN), for 212
    line: int

    @property
    def identity(self) -> str:
        return f"{self.message_id}/{self.invoice_number}/{self.code}"

    @property
    def label(self) -> str:
        return f"{self.code} {LABELS.get(self.code, 'statut')}"


def looks_like_cdar(head: bytes) -> bool:
    """True when the file's root element is a CDAR message (from its first few KB)."""
    prolog = safexml.root_tag(head[:safexml.SNIFF_BYTES])
    return prolog is not None and prolog[1] == ROOT and prolog[2] == NAMESPACE


def read_cdar(path: Path) -> list[Status]:
    """The statuses a CDAR file reports; LedgerError names what is wrong and where."""
    with infiles.open_binary(path) as handle:
        data = b""
        size = os.fstat(handle.fileno()).st_size
        if size <= MAX_CDAR_BYTES:  # and a file that grows while it is read is refused
            data = infiles.read_up_to(handle, path, MAX_CDAR_BYTES + 1)
            size = len(data)
        if size > MAX_CDAR_BYTES:
            raise LedgerError(f"{path}: {size} bytes: larger than a CDAR message can be "
                              f"({MAX_CDAR_BYTES // 1024 // 1024} MB)")
    root = safexml.parse(path, data, error=LedgerError, kind="CDAR message",
                         expected="a CDAR status message")
    name = etree.QName(root)
    if name.localname != ROOT or name.namespace != NAMESPACE:
        where = f"in namespace {name.namespace[:80]}" if name.namespace else "without a namespace"
        raise LedgerError(f"{path}: line {root.sourceline}: the XML's root is "
                          f"<{name.localname[:40]}> {where}, not a CDAR status message "
                          f"(rsm:{ROOT} in {NAMESPACE})")
    return _Message(path, root).statuses()


class _Message:
    def __init__(self, path: Path, root: Any) -> None:
        self.path, self.root = path, root

    def fail(self, element: Any, path: str, problem: str) -> LedgerError:
        return LedgerError(f"{self.path}: line {element.sourceline}: {path}: {problem}")

    def text(self, element: Any, path: str, *, required: str | None = None,
             limit: int = MAX_ID) -> str | None:
        """The stripped text at ``path`` under ``element``; ``required`` names it in the
        error when it is missing."""
        found = element.find(path, NS)
        value = " ".join((found.text or "").split()) if found is not None else ""
        if not value:
            if required:
                raise self.fail(element if found is None else found, path,
                                f"missing: the {required} is required")
            return None
        if len(value) > limit or any(ord(c) < 32 for c in value):
            raise self.fail(found, path, f"{value[:40]!r}…: not a valid {required or 'value'} "
                                         f"(at most {limit} printable characters)")
        return value

    def issued_at(self, document: Any) -> dt.datetime:
        path = "ram:IssueDateTime/udt:DateTimeString"
        found = document.find(path, NS)
        value = self.text(document, path, required="date the status was issued") or ""
        fmt = found.get("format", "204")
        try:
            if fmt == "205" and (zoned := _ZONED.fullmatch(value)):
                return dt.datetime.strptime(zoned.group(1) + zoned.group(2), "%Y%m%d%H%M%z")
            if fmt in _FORMATS:
                return dt.datetime.strptime(value, _FORMATS[fmt]).replace(tzinfo=dt.UTC)
        except ValueError:
            pass
        raise self.fail(found, path, f"{value[:20]!r} is not a date of format {fmt[:5]!r} "
                                     "(102 CCYYMMDD, 203 CCYYMMDDHHMM, 204 CCYYMMDDHHMMSS, "
                                     "205 CCYYMMDDHHMM±HHMM)")

    def statuses(self) -> list[Status]:
        document = self.root.find("rsm:ExchangedDocument", NS)
        if document is None:
            raise self.fail(self.root, "rsm:ExchangedDocument", "missing: not a CDAR status message")
        message_id = self.text(document, "ram:ID", required="message id") or ""
        issued_at = self.issued_at(document)
        role = self.text(document, "ram:IssuerTradeParty/ram:RoleCode", limit=3) or ""
        references = self.root.findall("rsm:AcknowledgementDocument/ram:ReferenceReferencedDocument", NS)
        if not references:
            raise self.fail(self.root, "rsm:AcknowledgementDocument/ram:ReferenceReferencedDocument",
                            "missing: the message names no invoice")
        return [self.status(ref, message_id, issued_at, role) for ref in references]

    def status(self, ref: Any, message_id: str, issued_at: dt.datetime, role: str) -> Status:
        number = self.text(ref, "ram:IssuerAssignedID", required="invoice number",
                           limit=MAX_NUMBER) or ""
        code = self.text(ref, "ram:ProcessConditionCode", required="status code", limit=3) or ""
        if code not in CODES:
            raise self.fail(ref.find("ram:ProcessConditionCode", NS), "ram:ProcessConditionCode",
                            f"{code!r} is not a status of the specification (200 to 214, 220, "
                            f"221, 224 to 228, 250, 251, 300, 301, 400, 401, 500, 501, 601)")
        siren = None
        for party in ref.findall("ram:IssuerTradeParty/ram:GlobalID", NS):
            if party.get("schemeID") == "0002":
                siren = self.text(party, ".", limit=9) or None
        reasons, amount = [], None
        for status in ref.findall("ram:SpecifiedDocumentStatus", NS):
            said = [self.text(status, "ram:ReasonCode", limit=40),
                    self.text(status, "ram:Reason", limit=MAX_REASON)]
            reasons.append(" — ".join(part for part in said if part))
            for characteristic in status.findall("ram:SpecifiedDocumentCharacteristic", NS):
                if self.text(characteristic, "ram:TypeCode", limit=6) == "MEN":
                    amount = (amount or Decimal(0)) + self.amount(characteristic)
        reason = "; ".join(r for r in reasons if r)[:MAX_REASON] or None
        return Status(message_id, number, code, issued_at, role, siren, reason, amount,
                      ref.sourceline or 0)

    def amount(self, characteristic: Any) -> Decimal:
        path = "ram:ValueAmount"
        value = self.text(characteristic, path, required="amount cashed (MEN)", limit=20) or ""
        if not _AMOUNT.fullmatch(value):
            raise self.fail(characteristic.find(path, NS), path,
                            f"{value!r} is not an amount (digits, a point, at most 2 decimals)")
        return Decimal(value)
