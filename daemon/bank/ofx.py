"""OFX bank statements: OFX 1.x (SGML, ``OFXHEADER:100``) and 2.x (XML, ``<?OFX ...?>``).

Read with ``ofxtools``: its header reader (``parse_header``, which decodes
the body in the ``CHARSET`` the header declares: ``1252``, ``ISO-8859-1``
or UTF-8), its tag-soup ``TreeBuilder`` and its model classes, which
validate each aggregate (``Aggregate.from_etree``, what ``OFXTree.convert``
does for the whole file).  A file holding only ``<OFX>`` (no header) is read
as UTF-8, else Windows-1252.  Nothing is expanded: ofxtools matches tags
with a regular expression and unescapes only ``&amp; &lt; &gt; &nbsp;``.

Read: the one bank (``STMTRS``) or credit-card (``CCSTMTRS``) statement,
its account (``BANKACCTFROM``: an IBAN only when ``ACCTID`` is one; the
RIB pieces otherwise stay the account's name, no IBAN is built), its date
(``LEDGERBAL/DTASOF``, else ``BANKTRANLIST/DTEND``) and each ``STMTTRN``:
``TRNAMT`` with its sign as given, ``DTPOSTED`` (booked), ``DTUSER``
(value date), ``FITID`` (the identity), ``NAME``/``PAYEE`` (counterparty),
``MEMO`` (text; ``NAME`` when there is no memo), ``REFNUM``/``CHECKNUM``;
a French bank's label in ``NAME`` (``VIR SEPA RECU /DE DUPONT /MOTIF ...``)
gives the name after ``/DE`` as counterparty.  Dates are the calendar day
written in the file, not shifted to UTC.  A FITID several transactions
share is no identity: those get the statement's hash.

Refused whole, in one line naming the line or the transaction: a file that
is not OFX, a header or body ofxtools cannot read, an end tag that closes
another element, a file with no statement or with several, a transaction
ofxtools refuses.  ofxtools' warnings (a name longer than 32 characters,
an unknown tag skipped) are logged, one line each.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import re
import warnings
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from ofxtools.header import parse_header
from ofxtools.models.base import Aggregate
from ofxtools.models.i18n import CURRENCY_CODES
from ofxtools.Parser import ParseError, TreeBuilder
from ofxtools.Types import DateTime
from schwifty import IBAN

from relances.daemon.bank.statements import (
    MAX_STATEMENT_BYTES,
    Entry,
    Statement,
    given_identity,
    with_identities,
)
from relances.daemon.errors import BankError
from relances.daemon.ledger.references import find_references

log = logging.getLogger(__name__)
# ofxtools logs each aggregate it converts at INFO, thousands of lines for one statement;
# unless the service's logging configuration set a level for it, keep its warnings only.
if logging.getLogger("ofxtools").level == logging.NOTSET:
    logging.getLogger("ofxtools").setLevel(logging.WARNING)

BOM = b"\xef\xbb\xbf"
STATEMENT_TAGS = ("STMTRS", "CCSTMTRS")
MAX_DEPTH = 32  # OFX nests about ten deep; deeper is not a statement
MAX_AMOUNT = Decimal("1e12")
MAX_TEXT = 1000
CENTS = Decimal("0.00")
_XML_PROLOG = re.compile(rb"<\?xml[^>]{0,300}\?>\s*")
_POSITION = re.compile(r" - position=\[(\d+):(\d+)\]")
_CANT_SET = re.compile(r"Can't set \w+\.(\w+) to ")
_MUTEX = re.compile(r"must contain (at most|exactly) 1 of \[(\[.*?\])\]")
_ORDER = re.compile(r"(\w+) should occur before (\w+), not after it")
_FRENCH_FROM = re.compile(r"/DE (.+?)\s*(?:/[A-Z]{2,8} |$)")  # "VIR SEPA RECU /DE NAME /MOTIF ..."
_DATE = DateTime()  # ofxtools' check of an OFX date: YYYYMMDD[HHMMSS[.XXX][[offset:TZ]]]


class _Builder(TreeBuilder):
    """ofxtools' tag-soup builder, with each end tag checked against the element it closes
    (ofxtools' own lets ``</STMTTRN>`` close a ``<PAYEE>`` left open) and the depth bounded."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []

    def start(self, tag: Any, attrs: dict[Any, Any], /) -> ET.Element:
        if len(self.open) >= MAX_DEPTH:
            raise ParseError(f"elements nested more than {MAX_DEPTH} deep")
        self.open.append(tag)
        return super().start(tag, attrs)

    def end(self, tag: str, /) -> ET.Element:
        if not self.open or self.open[-1] != tag:
            raise ParseError(f"</{tag}> closes " + (f"<{self.open[-1]}>" if self.open else "nothing"))
        self.open.pop()
        return super().end(tag)


def looks_like(data: bytes) -> bool:
    """Starts (after a BOM and blanks) with ``OFXHEADER:``, an XML prolog and ``<?OFX``, or ``<OFX>``."""
    head = data[:4096].removeprefix(BOM).lstrip()
    if head.startswith(b"OFXHEADER:"):
        return True
    prolog = _XML_PROLOG.match(head)
    rest = head[prolog.end():] if prolog else head
    return (prolog is not None and rest.startswith(b"<?OFX")) or rest[:5].upper() == b"<OFX>"


def read(path: Path, data: bytes) -> Statement:
    """The statement of an OFX file; BankError names the line or transaction and what is wrong."""
    if len(data) > MAX_STATEMENT_BYTES:
        raise BankError(f"{path}: {len(data)} bytes: larger than a statement can be")
    if not looks_like(data):
        raise BankError(f"{path}: not an OFX file: {_what(data)}")
    body, first_line = _body(path, data)
    root = _tree(path, body, first_line)
    stmt = _statement_element(path, root)
    curdef = (stmt.findtext("CURDEF") or "").strip()
    if curdef not in CURRENCY_CODES:
        raise BankError(f"{path}: <{stmt.tag}>: CURDEF {curdef!r} is not a currency code")
    account, iban = _account(path, stmt)
    lines = _transaction_lines(root, body, first_line)
    transactions = stmt.findall("BANKTRANLIST/STMTTRN")
    entries = [_entry(path, elem, n, lines.get(id(elem)), curdef)
               for n, elem in enumerate(transactions, start=1)]
    fitids = [(elem.findtext("FITID") or "").strip() for elem in transactions]
    entries = with_identities(account, _identities(path, account, entries, fitids))
    date = (_raw_date(path, stmt.tag, stmt.findtext("LEDGERBAL/DTASOF"), "DTASOF")
            or _raw_date(path, stmt.tag, stmt.findtext("BANKTRANLIST/DTEND"), "DTEND")
            or max((e.booked_on for e in entries), default=None))
    log.info("%s: OFX statement of %s, %d entries", path, iban or account, len(entries))
    return Statement(source=path.name, format="ofx", account_iban=iban, statement_id=None,
                     date=date, entries=entries)


def _body(path: Path, data: bytes) -> tuple[str, int]:
    """The decoded OFX body, after its header, and the file line it starts on."""
    data = data.removeprefix(BOM)
    stripped = data.lstrip()
    skipped = data[: len(data) - len(stripped)].count(b"\n")
    head = stripped[:4096]
    if head.startswith(b"OFXHEADER:") or (_XML_PROLOG.match(head) and b"<?OFX" in head[:400]):
        try:
            header, body = parse_header(io.BytesIO(stripped))
        except UnicodeDecodeError as exc:
            raise BankError(f"{path}:{_byte_line(stripped, exc.encoding, skipped)}: not {exc.encoding} "
                            f"text, the encoding its OFX header declares") from None
        except (SyntaxError, ValueError) as exc:  # OFXHeaderError is a SyntaxError
            why = ("it must give OFXHEADER, DATA, VERSION, SECURITY, ENCODING, CHARSET, "
                   "[COMPRESSION,] OLDFILEUID, NEWFILEUID in this order" if "malformed" in str(exc)
                   else _short(exc))
            raise BankError(f"{path}: the OFX header is not valid: {why}") from None
        codec: str = header.codec
    else:
        codec = "utf-8"
        try:
            body = stripped.decode(codec)
        except UnicodeDecodeError:
            codec = "cp1252"
            body = stripped.decode(codec, errors="replace")
    text = stripped.decode(codec, errors="replace")
    return body, skipped + text.count("\n", 0, max(text.find(body[:64]), 0)) + 1


def _byte_line(data: bytes, encoding: str, skipped: int) -> int:
    """The line of the first byte that is not ``encoding``."""
    try:
        data.decode(encoding)
    except UnicodeDecodeError as exc:
        return skipped + data.count(b"\n", 0, exc.start) + 1
    return skipped + 1


def _tree(path: Path, body: str, first_line: int) -> ET.Element:
    """The body's elements, built by ofxtools' tag-soup parser, end tags checked."""
    builder = _Builder()
    try:
        builder.feed(body)
        root = builder.close()
    except SyntaxError as exc:  # ofxtools' ParseError, ElementTree's ParseError
        message = str(exc)
        at = _POSITION.search(message)
        if at is None:
            raise BankError(f"{path}: not well-formed OFX: {_short(message)}") from None
        start, end = int(at[1]), int(at[2])
        line = first_line + body.count("\n", 0, start)
        what = message[: at.start()]
        if what.startswith("Tail text"):
            what = f"text outside any element: {_short(body[start:end])}"
        raise BankError(f"{path}:{line}: not well-formed OFX: {_short(what)}") from None
    if builder.open:
        raise BankError(f"{path}: not well-formed OFX: <{builder.open[-1]}> is not closed "
                        f"when the file ends")
    if root is None or root.tag != "OFX":
        raise BankError(f"{path}: not an OFX file: no <OFX> element")
    return root


def _statement_element(path: Path, root: ET.Element) -> ET.Element:
    """The file's one bank or credit-card statement."""
    found = [elem for elem in root.iter() if elem.tag in STATEMENT_TAGS]
    if not found:
        holds = ", ".join(child.tag for child in root) or "nothing"
        raise BankError(f"{path}: no bank statement (STMTRS or CCSTMTRS) in this OFX file; "
                        f"it holds {holds}")
    if len(found) > 1:
        accounts = ", ".join((e.findtext("*/ACCTID") or "?").strip() for e in found)
        raise BankError(f"{path}: {len(found)} statements in one OFX file (accounts {accounts}): "
                        f"export one account per file")
    return found[0]


def _account(path: Path, stmt: ET.Element) -> tuple[str, str | None]:
    """The account's name for identities, and its IBAN when ``ACCTID`` is one."""
    elem = stmt.find("BANKACCTFROM") if stmt.tag == "STMTRS" else stmt.find("CCACCTFROM")
    if elem is None:
        raise BankError(f"{path}: <{stmt.tag}> has no account (BANKACCTFROM or CCACCTFROM)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            account = Aggregate.from_etree(elem)
        except Exception as exc:  # ofxtools raises ValueError, TypeError, SyntaxError... for bad data
            raise BankError(f"{path}: <{elem.tag}>: {_explain(exc, elem)}") from None
    _log_warnings(f"{path}: <{elem.tag}>", caught)
    acctid = "".join(str(account.acctid).split())
    iban = _iban(acctid)
    pieces = [getattr(account, name, None) for name in ("bankid", "branchid", "acctid", "acctkey")]
    return iban or " ".join(str(p) for p in pieces if p), iban


def _transaction_lines(root: ET.Element, body: str, first_line: int) -> dict[int, int]:
    """The file line of each ``<STMTTRN>``, when the tags and the elements agree."""
    elems = list(root.iter("STMTTRN"))
    starts = [m.start() for m in re.finditer(r"<STMTTRN>", body)]
    if len(elems) != len(starts):
        return {}
    lines, line, last = {}, first_line, 0
    for elem, start in zip(elems, starts, strict=True):
        line += body.count("\n", last, start)
        last = start
        lines[id(elem)] = line
    return lines


def _entry(path: Path, elem: ET.Element, n: int, line: int | None, curdef: str) -> Entry:
    """One ``STMTTRN``, validated by ofxtools."""
    where = f"{path}:{line}: transaction {n}" if line else f"{path}: transaction {n}"
    fitid = (elem.findtext("FITID") or "").strip()
    if fitid:
        where += f" (FITID {_short(fitid, 40)})"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            trn = Aggregate.from_etree(elem)
        except Exception as exc:  # ofxtools raises ValueError, TypeError, ArithmeticError, SyntaxError...
            raise BankError(f"{where}: {_explain(exc, elem)}") from None
    _log_warnings(where, caught)
    amount = trn.trnamt
    if not amount.is_finite() or abs(amount) >= MAX_AMOUNT:
        raise BankError(f"{where}: TRNAMT {_short(elem.findtext('TRNAMT'))!r} is not an amount")
    name = trn.name or (trn.payee.name if trn.payee is not None else None) or trn.extdname or ""
    text = trn.memo or trn.name or ""
    french = _FRENCH_FROM.search(name)
    value_date = elem.findtext("DTUSER")
    return Entry(
        identity="",
        booked_on=_day(elem.findtext("DTPOSTED") or ""),
        value_date=_day(value_date) if value_date and value_date.strip() else None,
        amount=amount + CENTS,
        position=n,
        where=f"{path.name}:{line}" if line else f"{path.name}: entry {n}",
        currency=trn.currency.cursym if trn.currency is not None else curdef,
        counterparty=french[1] if french else name,
        reference=next(iter(find_references(f"{text} {name}")), None),
        text=text[:MAX_TEXT],
        bank_reference=trn.refnum or trn.checknum,
    )


def _identities(path: Path, account: str, entries: list[Entry], fitids: list[str]) -> list[Entry]:
    """Each entry's FITID as its identity; a FITID that several entries share tells
    none apart, so those keep an empty identity (``with_identities`` hashes them)."""
    counts = Counter(fitid for fitid in fitids if fitid)
    done = []
    for entry, fitid in zip(entries, fitids, strict=True):
        if counts[fitid] > 1:
            if entry.position == fitids.index(fitid) + 1:
                log.warning("%s: FITID %s is given to %d transactions: they are told apart by "
                            "their content", path, _short(fitid, 40), counts[fitid])
            done.append(entry)
        else:
            done.append(replace(entry, identity=given_identity(account, fitid) or ""))
    return done


def _log_warnings(where: str, caught: list[warnings.WarningMessage]) -> None:
    """ofxtools' warnings, one line each: a value longer than OFX allows is kept whole
    (an IBAN in ACCTID, a bank's label in NAME), a tag it does not know is skipped."""
    for warning in caught:
        message = _short(warning.message, 200)
        level = logging.DEBUG if "exceeds max length" in message else logging.WARNING
        log.log(level, "%s: %s", where, message)


def _day(raw: str) -> dt.date:
    """The calendar day an OFX date ofxtools has checked is written with (ofxtools
    itself would shift ``20240122000000[+1:CET]`` to the 21st, in UTC)."""
    raw = raw.strip()
    return dt.date(int(raw[:4]), int(raw[4:6]), int(raw[6:8]))


def _raw_date(path: Path, where: str, raw: str | None, tag: str) -> dt.date | None:
    """The day of an optional OFX date, checked by ofxtools."""
    if raw is None or not raw.strip():
        return None
    try:
        _DATE.convert(raw.strip())
    except ValueError as exc:
        raise BankError(f"{path}: <{where}>: {tag} {_short(raw)!r}: {_short(exc)}") from None
    return _day(raw)


def _explain(exc: BaseException, elem: ET.Element) -> str:
    """ofxtools' error as one short line naming the tag."""
    message = str(exc)
    if isinstance(exc, ArithmeticError):
        for tag in ("TRNAMT", "BALAMT", "CURRATE"):
            raw = elem.findtext(f".//{tag}")
            if raw is not None and not _is_number(raw):
                return f"{tag} {_short(raw)!r} is not an amount"
        return "an amount is not a number"
    order = _ORDER.search(message)
    if order:
        first, second = order[1], order[2]
        return f"<{first}> twice" if first == second else f"<{first}> after <{second}>, not before"
    mutex = _MUTEX.search(message)
    if mutex:
        tags = " and ".join(tag.upper() for tag in re.findall(r"'(\w+)'", mutex[2]))
        return f"{tags} given together, OFX allows one" if mutex[1] == "at most" else \
            f"{tags}: OFX needs exactly one of them"
    cant = _CANT_SET.match(message)
    if not cant:
        return _short(message)
    tag = cant[1].upper()
    raw = next((e.text for e in elem.iter(tag)), None)
    why = message[cant.end():]
    why = why.removeprefix(f"{raw}: ") if raw is not None else why.removeprefix("None: ")
    if why.endswith("Value is required"):
        return f"{tag} is missing"
    length = re.search(r"exceeds max length=(\d+)", why)
    if length:
        return f"{tag} is longer than {length[1]} characters"
    if "does not conform to OFX formats" in why:
        return f"{tag} {_short(raw)!r} is not an OFX date (YYYYMMDD, then maybe HHMMSS)"
    if "is not OneOf" in why:
        return f"{tag} {_short(raw)!r} is not one of the values OFX allows there"
    return f"{tag} {_short(raw)!r}: {_short(why)}"


def _is_number(raw: str) -> bool:
    try:
        Decimal(raw.strip().replace(",", "."))
    except ArithmeticError:
        return False
    return True


def _iban(text: str | None) -> str | None:
    """``text`` as an IBAN when it is a valid one."""
    if not text:
        return None
    try:
        return str(IBAN("".join(text.split())))
    except ValueError:  # schwifty's errors are ValueErrors
        return None


def _what(data: bytes) -> str:
    """What a file that is not OFX looks like, for the refusal."""
    head = data[:512].removeprefix(BOM).lstrip()
    kinds = ((b"%PDF", "a PDF document"), (b"PK\x03\x04", "a ZIP archive (a spreadsheet?)"),
             (b"<", "XML or markup without the OFX header, <?OFX ...?> declaration or <OFX> element"))
    for magic, kind in kinds:
        if head.startswith(magic):
            return kind
    if not head or b"\0" in head:
        return "binary data" if head else "the file is empty"
    return f"it starts with {_short(head.splitlines()[0][:40].decode('latin-1'))!r}"


def _short(value: object, limit: int = 80) -> str:
    """``value`` on one line, at most ``limit`` characters."""
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
