"""Reading ISO 20022 camt.053 bank-to-customer statements.

Read, versions ``camt.053.001.02`` to ``001.13`` (the paths below are the same
in all; a later ``001.xx`` is read with them, with a warning), from each
``BkToCstmrStmt/Stmt``: the account (``Acct/Id/IBAN``, else
``Acct/Id/Othr/Id``), the statement's ``Id`` and date (the closing
balance's, ``Bal[Tp/CdOrPrtry/Cd=CLBD]/Dt``, else ``CreDtTm``, else its last
entry's).  From each booked ``Ntry``: ``Amt`` and its ``Ccy``, ``CdtDbtInd``
(``CRDT`` money in, positive; ``DBIT`` money out, negative), ``BookgDt`` and
``ValDt`` (``Dt`` or ``DtTm``), ``AcctSvcrRef`` (the bank's reference).  An
entry whose ``NtryDtls`` hold several ``TxDtls`` (a batch) gives one entry
per transaction, with its own ``Amt`` (else ``AmtDtls/TxAmt/Amt``) and
``CdtDbtInd``; otherwise one entry for the ``Ntry``.  From the transaction:
``Refs/EndToEndId``, the other party (for a credit the debtor,
``RltdPties/Dbtr/Nm`` or, from 001.08, ``Dbtr/Pty/Nm``, and ``DbtrAcct/Id/IBAN``;
for a debit the creditor), ``RmtInf/Ustrd`` (several joined by a space; else
``AddtlTxInf``, else the entry's ``AddtlNtryInf``) and the structured
creditor reference ``RmtInf/Strd/CdtrRefInf/Ref`` (the first one; further
ones are added to the text).  Entries whose status is not ``BOOK`` (``PDNG``,
``INFO``, ``FUTR``) are left out: they are not booked.

Identity: ``AcctSvcrRef`` (with ``/n``, the transaction's number, for a
batch), else the transaction's ``Refs/AcctSvcrRef``, else the
``EndToEndId`` with the booking date and the amount (a payer may reuse it),
else the statements' hash; an identity given twice in one file gets ``#2``.

Refused, with one :class:`BankError` line naming the file, the XML line and
the element path: a file over 50 MB; anything with a ``<!DOCTYPE>`` (the
vehicle of external entities and "billion laughs": no camt.053 needs one);
not well-formed XML; XML that is not a camt.053 (saying what it is); version
001.01; no ``Stmt``; a missing or malformed amount, currency, sign, date or
an invalid account IBAN.  The XML is parsed with entity resolution, DTD
loading and the network off and lxml's size limits on.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from lxml import etree

from relances.daemon import safexml
from relances.daemon.bank.camt_quick import (
    _AMOUNT,
    _CURRENCY,
    _DATE,
    MAX_FIELD,
    MAX_TEXT,
    _iban,
    quick_entry,
    quick_fields,
)
from relances.daemon.bank.statements import (
    MAX_STATEMENT_BYTES,
    Entry,
    Statement,
    given_identity,
    with_identities,
)
from relances.daemon.errors import BankError

log = logging.getLogger(__name__)

NAMESPACE = re.compile(r"urn:iso:std:iso:20022:tech:xsd:camt\.053\.001\.(\d{2})")
LAST_KNOWN_VERSION = 13
_ISO_MESSAGE = re.compile(r"urn:iso:std:iso:20022:tech:xsd:([a-z]{4}\.\d{3}\.\d{3}\.\d{2})")
_KINDS = {"camt.052": "an account report", "camt.054": "a debit/credit notification",
          "pain.001": "a credit transfer order", "pain.008": "a direct debit order"}
MAX_IDENTITY = 200  # bank_entries.identity


def looks_like(data: bytes) -> bool:
    """True when the file's root element is a camt.053 ``Document`` (from its first few KB)."""
    prolog = safexml.root_tag(data[:safexml.SNIFF_BYTES])
    return prolog is not None and prolog[1] == "Document" and NAMESPACE.fullmatch(prolog[2]) is not None


def read(path: Path, data: bytes) -> Statement:
    """The statement a camt.053 file holds; BankError names what is wrong and where."""
    if len(data) > MAX_STATEMENT_BYTES:
        raise BankError(f"{path}: {len(data)} bytes: larger than a statement can be")
    root, version = _parse(path, data)
    if version < 2:
        raise BankError(f"{path}: line {root.sourceline}: camt.053.001.01 is not read "
                        f"(only camt.053.001.02 and later)")
    if version > LAST_KNOWN_VERSION:
        log.warning("%s: camt.053.001.%02d is newer than the versions known; read as 001.%02d",
                    path, version, LAST_KNOWN_VERSION)
    xml = _Xml(path, etree.QName(root).namespace or "")
    statements = xml.all(root, "BkToCstmrStmt/Stmt")
    if not statements:
        raise BankError(f"{path}: line {root.sourceline}: Document/BkToCstmrStmt/Stmt: "
                        f"no statement in this camt.053")
    heads, entries, dates = list[_Head](), list[Entry](), list[dt.date]()
    for stmt in statements:
        head = _statement_head(xml, stmt)
        found = with_identities(head.account, _statement_entries(xml, stmt, head.account, len(entries)))
        heads.append(head)
        entries += found
        date = head.closing or head.created or (max(e.booked_on for e in found) if found else None)
        dates += [date] if date else []
    ibans = {head.iban for head in heads}
    return Statement(
        source=path.name, format=f"camt.053.001.{version:02d}",
        account_iban=ibans.pop() if len(ibans) == 1 else None,
        statement_id=",".join(head.id for head in heads if head.id)[:100] or None,
        date=max(dates) if dates else None,
        entries=_unique(entries))


def _parse(path: Path, data: bytes) -> tuple[Any, int]:
    """The root element, from XML that declares no DTD, and the camt.053.001 version."""
    root = safexml.parse(path, data, error=BankError, kind="camt.053", expected="a camt.053 statement")
    name = etree.QName(root)
    version = NAMESPACE.fullmatch(name.namespace or "")
    if name.localname != "Document" or version is None:
        raise BankError(f"{path}: line {root.sourceline}: {_what_xml(name)}, not a camt.053 statement "
                        f"(a Document in urn:iso:std:iso:20022:tech:xsd:camt.053.001.xx)")
    return root, int(version.group(1))


def _what_xml(name: etree.QName) -> str:
    message = _ISO_MESSAGE.fullmatch(name.namespace or "")
    if message:
        kind = _KINDS.get(message.group(1)[:8], "another ISO 20022 message")
        return f"the XML is {message.group(1)}, {kind}"
    namespace = f" in namespace {name.namespace[:80]}" if name.namespace else " without a namespace"
    return f"the XML's root is <{name.localname[:40]}>{namespace}"


@functools.lru_cache(maxsize=256)
def _xpath(path: str) -> str:
    """``Acct/Id/IBAN`` → ``c:Acct/c:Id/c:IBAN``: each step in the file's namespace."""
    return "/".join(f"c:{step}" for step in path.split("/"))


class _Xml:
    """Namespaced look-ups with the file's namespace, and where an element is, for messages."""

    def __init__(self, path: Path, namespace: str) -> None:
        self.path = path
        self.ns = {"c": namespace}
        self.ntry_number = 0  # of the last Ntry read, in the whole file
        self.quick = quick_fields(namespace)

    def all(self, element: Any, path: str) -> list[Any]:
        return list(element.findall(_xpath(path), self.ns))

    def one(self, element: Any, path: str) -> Any | None:
        return element.find(_xpath(path), self.ns)

    def text(self, element: Any, path: str, limit: int = MAX_FIELD) -> str:
        found = self.one(element, path)
        return _clean(found, limit) if found is not None else ""

    def where(self, element: Any, path: str = "") -> str:
        """``file: line 12: BkToCstmrStmt/Stmt[1]/Ntry[3]/path`` (for a message: it counts siblings)."""
        steps, node = [path] if path else [], element
        while (parent := node.getparent()) is not None:
            alike = [child for child in parent if child.tag == node.tag]
            name = etree.QName(node).localname
            numbered = len(alike) > 1 or name in ("Stmt", "Ntry", "TxDtls")
            steps.append(f"{name}[{alike.index(node) + 1}]" if numbered else name)
            node = parent
        return f"{self.path}: line {element.sourceline}: {'/'.join(reversed(steps))}"


@dataclass(frozen=True)
class _Head:
    account: str  # the IBAN, else the bank's other account id, else ""
    iban: str | None
    id: str
    closing: dt.date | None
    created: dt.date | None


def _statement_head(xml: _Xml, stmt: Any) -> _Head:
    given = xml.one(stmt, "Acct/Id/IBAN")
    iban = _iban(_clean(given, MAX_FIELD)) if given is not None else None
    if given is not None and iban is None:
        raise BankError(f"{xml.where(given)}: {_clean(given, 40)!r} is not a valid IBAN")
    account = iban or xml.text(stmt, "Acct/Id/Othr/Id")
    closing = None
    for balance in xml.all(stmt, "Bal"):
        if xml.text(balance, "Tp/CdOrPrtry/Cd") == "CLBD":
            closing = _date_choice(xml, balance, "Dt")
    created = xml.one(stmt, "CreDtTm")
    return _Head(account=account, iban=iban, id=xml.text(stmt, "Id"),
                 closing=closing, created=_datetime(xml, created).date() if created is not None else None)


def _statement_entries(xml: _Xml, stmt: Any, account: str, before: int) -> list[Entry]:
    entries: list[Entry] = []
    for ntry in xml.all(stmt, "Ntry"):
        xml.ntry_number += 1
        quick = quick_entry(xml.quick(ntry), account=account, position=before + len(entries) + 1,
                            where=f"{xml.path.name}: entry {xml.ntry_number}")
        if quick is not None:  # a plain entry, every value well-formed
            entries += quick
            continue
        status = xml.text(ntry, "Sts/Cd") or xml.text(ntry, "Sts")
        if status and status != "BOOK":
            log.info("%s: line %s: an entry of status %s left out: not booked",
                     xml.path, ntry.sourceline, status[:10])
            continue
        entries += _ntry_entries(xml, ntry, account, before + len(entries) + 1)
    return entries


def _ntry_entries(xml: _Xml, ntry: Any, account: str, position: int) -> list[Entry]:
    """One entry for the Ntry, or one per transaction of a batch."""
    amount, currency = _amount(xml, ntry)
    sign = _sign(xml, ntry)
    booked = _date_choice(xml, ntry, "BookgDt") or _date_choice(xml, ntry, "ValDt")
    if booked is None:
        raise BankError(f"{xml.where(ntry, 'BookgDt')}: the entry has no booking date")
    value = _date_choice(xml, ntry, "ValDt")
    bank_ref = xml.text(ntry, "AcctSvcrRef")
    info = xml.text(ntry, "AddtlNtryInf", MAX_TEXT)
    txs = xml.all(ntry, "NtryDtls/TxDtls")
    name, number = xml.path.name, xml.ntry_number
    base = Entry(identity="", booked_on=booked, amount=sign * amount, position=position,
                 where=f"{name}: entry {number}", value_date=value, currency=currency,
                 text=info, bank_reference=bank_ref or None)
    if len(txs) <= 1:
        return [_with_details(xml, base, txs[0] if txs else None, account, 0)]
    done = []
    for index, tx in enumerate(txs, 1):
        if (tx_amount := xml.one(tx, "Amt")) is None:
            tx_amount = xml.one(tx, "AmtDtls/TxAmt/Amt")
        if tx_amount is None:
            raise BankError(f"{xml.where(tx, 'Amt')}: transaction {index} of a batch entry has no amount")
        value_of, tx_currency = _amount(xml, tx_amount.getparent())
        tx_sign = _sign(xml, tx) if xml.one(tx, "CdtDbtInd") is not None else sign
        entry = replace(base, amount=tx_sign * value_of, currency=tx_currency, position=position + index - 1,
                        where=f"{name}: entry {number}, transaction {index}")
        done.append(_with_details(xml, entry, tx, account, index))
    total = sum(e.amount for e in done)
    if all(e.currency == currency for e in done) and total != base.amount:
        log.warning("%s: line %s: the transactions add up to %s, the entry says %s",
                    xml.path, ntry.sourceline, total, base.amount)
    return done


def _with_details(xml: _Xml, entry: Entry, tx: Any | None, account: str, index: int) -> Entry:
    """The entry with its transaction's parties, texts, references and identity."""
    given = given_identity(account, entry.bank_reference)
    identity = (f"{given}/{index}" if index else given) if given else ""
    if tx is None:
        return replace(entry, identity=identity)
    side = "Dbtr" if entry.amount >= 0 else "Cdtr"
    party = xml.text(tx, f"RltdPties/{side}/Nm") or xml.text(tx, f"RltdPties/{side}/Pty/Nm")
    ustrd = " ".join(_clean(line, MAX_TEXT) for line in xml.all(tx, "RmtInf/Ustrd"))
    refs = [text for text in (_clean(ref, MAX_FIELD) for ref in xml.all(tx, "RmtInf/Strd/CdtrRefInf/Ref"))
            if text]
    text = " ".join([ustrd or xml.text(tx, "AddtlTxInf", MAX_TEXT) or entry.text, *refs[1:]])
    e2e = xml.text(tx, "Refs/EndToEndId")
    e2e = e2e if given_identity(None, e2e) else ""
    if not identity:
        tx_ref = given_identity(account, xml.text(tx, "Refs/AcctSvcrRef"))
        by_e2e = given_identity(account, f"e2e:{e2e}:{entry.booked_on.isoformat()}:{entry.amount}")
        identity = tx_ref or (by_e2e if e2e else "") or ""
    return replace(entry, identity=identity, counterparty=party,
                   counterparty_iban=_party_iban(xml, tx, side), reference=refs[0] if refs else None,
                   text=" ".join(text.split())[:MAX_TEXT], end_to_end_id=e2e or None,
                   bank_reference=entry.bank_reference or xml.text(tx, "Refs/AcctSvcrRef") or None)


def _party_iban(xml: _Xml, tx: Any, side: str) -> str | None:
    given = xml.text(tx, f"RltdPties/{side}Acct/Id/IBAN")
    iban = _iban(given) if given else None
    if given and iban is None:
        log.warning("%s: line %s: %s's IBAN %r is not valid: left out",
                    xml.path, tx.sourceline, side, given[:40])
    return iban


def _amount(xml: _Xml, parent: Any) -> tuple[Decimal, str]:
    """``Amt`` of the element, and its ``Ccy``."""
    element = xml.one(parent, "Amt")
    if element is None:
        raise BankError(f"{xml.where(parent, 'Amt')}: the amount is missing")
    text = (element.text or "").strip()
    if not _AMOUNT.fullmatch(text):
        raise BankError(f"{xml.where(element)}: {text[:30]!r} is not an amount (digits, a point, "
                        f"up to 5 decimals)")
    currency = (element.get("Ccy") or "").strip()
    if not _CURRENCY.fullmatch(currency):
        raise BankError(f"{xml.where(element)}: Ccy {currency[:10]!r} is not a currency code")
    return Decimal(text), currency


def _sign(xml: _Xml, parent: Any) -> int:
    indicator = xml.text(parent, "CdtDbtInd")
    if indicator not in ("CRDT", "DBIT"):
        raise BankError(f"{xml.where(parent, 'CdtDbtInd')}: {indicator[:10]!r} is neither CRDT nor DBIT")
    return 1 if indicator == "CRDT" else -1


def _date_choice(xml: _Xml, parent: Any, path: str) -> dt.date | None:
    """The date of a ``Dt``/``DtTm`` choice under ``path``; None when absent."""
    element = xml.one(parent, path)
    if element is None:
        return None
    day = xml.one(element, "Dt")
    if day is not None:
        text = (day.text or "").strip()
        match = _DATE.fullmatch(text)
        try:
            if match:
                return dt.date.fromisoformat(match.group(1))
        except ValueError:
            pass
        raise BankError(f"{xml.where(day)}: {text[:40]!r} is not a date (YYYY-MM-DD)")
    moment = xml.one(element, "DtTm")
    if moment is not None:
        return _datetime(xml, moment).date()
    raise BankError(f"{xml.where(element)}: neither Dt nor DtTm")


def _datetime(xml: _Xml, element: Any) -> dt.datetime:
    text = (element.text or "").strip()
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}T[\d:.]+(?:Z|[+-]\d{2}:\d{2})?", text):
            raise ValueError(text)
        return dt.datetime.fromisoformat(text)
    except ValueError:
        raise BankError(f"{xml.where(element)}: {text[:40]!r} is not a date and time "
                        f"(YYYY-MM-DDThh:mm:ss)") from None


def _unique(entries: Iterable[Entry]) -> list[Entry]:
    """An identity given again in one file gets ``#2``, ``#3``…, by order; one too long, its hash."""
    seen: dict[str, int] = {}
    done = []
    for entry in entries:
        seen[entry.identity] = count = seen.get(entry.identity, 0) + 1
        identity = f"{entry.identity}#{count}" if count > 1 else entry.identity
        if len(identity) > MAX_IDENTITY:
            identity = "h:" + hashlib.sha256(identity.encode()).hexdigest()[:40]
        done.append(entry if identity == entry.identity else replace(entry, identity=identity))
    return done


def _clean(element: Any, limit: int) -> str:
    """The element's text, white space collapsed, cut at ``limit``."""
    return " ".join("".join(element.itertext()).split())[:limit]
