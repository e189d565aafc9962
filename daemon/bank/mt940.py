"""SWIFT MT940 bank statements, read with the ``mt-940`` library (``mt940.models.Transactions``).

A file holds one statement or several (a ``:20:`` starts each; a SWIFT
envelope ``{1:...}{2:...}{4:`` ... ``-}`` around them is dropped, as are a
bank's header lines before the first ``:20:``), all of one account; they
become one :class:`Statement`.  Text is UTF-8 when it decodes, else
Windows-1252 (the library's own fallback, cp852, would misread French
accents).  Read: ``:25:`` (``account_iban`` when it is, or ends with, a
valid IBAN), ``:28C:``, ``:60F:``/``:60M:`` and ``:62F:``/``:62M:``
(the statement's date is its last closing balance's), each ``:61:`` (value
date, entry date as the booking day, C/D/RC/RD: a reversal of a credit is
a debit, amount, customer reference, bank reference after ``//``) and its
``:86:``: German ``?20..?29`` remittance, ``?31`` IBAN, ``?32/?33`` name,
``SVWZ+``/``EREF+`` (split by the library); French/Dutch ``/REMI/``,
``/NAME/``, ``/IBAN/``, ``/EREF/``, ``/CNTP/`` keywords; otherwise the
whole text (lines cut at 65 characters are joined without a space, shorter
ones with one).  ``reference``: an RF reference in the remittance, else the
``:61:`` customer reference (the account owner's).  An entry's identity is
its bank reference unless it is missing, ``NONREF`` or shared with another
entry of the file: then a hash.  A statement's own ``:86:`` (after its
balances) is dropped: the library would add it to the last entry's text.

Refused whole, naming the line: a tag before the first ``:20:``, a field
the library cannot read, a statement without ``:25:``, an opening or a
closing balance, one whose opening balance plus its entries is not its
closing balance, statements of several accounts.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import mt940
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
# On a field it cannot read the library logs the value and its pattern at ERROR, over several
# lines; the BankError says it in one.  Unless the service's configuration set a level, quiet it.
if logging.getLogger("mt940").level == logging.NOTSET:
    logging.getLogger("mt940").setLevel(logging.CRITICAL)

OPTIONS = mt940.Options(
    applicant_iban=True,  # ?31 is the counterparty's IBAN, not part of its name
    merge_keeps_values=True,  # an :86: without KREF keeps the :61: customer reference
    reversal_sign=True,  # RC (reversal of a credit) is money out
    case_insensitive_marks=True,
    unbounded_details=True,  # the whole :86:, not nine chunks of 65 characters
)
BOM = "\ufeff"
SWIFT_LINE = 65  # characters: a full line goes on without a space on the next
MAX_AMOUNT = Decimal("1e12")
MAX_TEXT = 1000
CENTS = Decimal("0.00")
_TAG = re.compile(r":(\d{2}|NS)([A-Z])?:")
_ENVELOPE = re.compile(r"^\s*(?:-\}|\{\d:|-\s*$)")
_SLASH_KEYS = ("CDTRREFTP", "CDTRREF", "TRTP", "CNTP", "ORDP", "BENM", "NAME", "IBAN", "BIC", "ADDR",
               "REMI", "EREF", "MARF", "CSID", "PREF", "PURP", "RTRN", "ULTC", "ULTD", "ISDT")
_SLASH = re.compile(r"/(" + "|".join(_SLASH_KEYS) + r")(?=/)")
_NO_ID = {"", "NONREF", "NOTPROVIDED", "NONE"}
_FIELDS: dict[int | str, str] = {
    13: "a date and time (YYMMDDHHMM)", 28: "a statement number (n[/n])",
    34: "a floor limit", 90: "a count, a currency and an amount",
    61: "a statement line (YYMMDD[MMDD], C/D/RC/RD, amount, type, reference[//bank reference])",
    **{tag: "a balance (C/D, YYMMDD, currency, amount)" for tag in (60, 62, 64, 65)},
}


@dataclass
class _Block:
    """One statement's lines: from its ``:20:`` to the next, and its fields' lines."""

    start: int  # 0-based index of the :20: line
    end: int = 0
    fields: list[tuple[int, str, int | str]] = field(default_factory=list)  # (index, tag, key)


@dataclass
class _Part:
    account: str
    iban: str | None
    statement_id: str
    date: dt.date
    entries: list[Entry]
    bank_references: list[str]


class _Progress:
    """A pre-processor for every field: how many the library has read, to name the one
    it fails on (it raises without saying where)."""

    def __init__(self) -> None:
        self.read = 0

    def __call__(self, transactions: Any, tag: Any, tag_dict: dict[str, Any], *args: Any) -> dict[str, Any]:
        self.read += 1
        return tag_dict

    def processors(self) -> dict[str, list[Any]]:
        defaults = mt940.models.Transactions.DEFAULT_PROCESSORS
        slugs = {tag.slug for tag in mt940.tags.TAG_BY_ID.values()}
        return {f"pre_{slug}": [self, *defaults.get(f"pre_{slug}", [])] for slug in slugs}


def looks_like(data: bytes) -> bool:
    """A ``:20:`` line and a ``:60F:`` or ``:61:`` line near the start (in a SWIFT envelope or not)."""
    head = data[:4096].removeprefix(BOM.encode()).decode("latin-1")
    return (re.search(r"(?m)^(?:\{.*\{4:)?:20:", head) is not None
            and re.search(r"(?m)^:(?:60F|60M|61):", head) is not None)


def read(path: Path, data: bytes) -> Statement:
    """The statements of an MT940 file, as one; BankError names the line and what is wrong."""
    if len(data) > MAX_STATEMENT_BYTES:
        raise BankError(f"{path}: {len(data)} bytes: larger than a statement can be")
    lines = _unwrap(re.split(r"\r\n|\r|\n", _decode(data)))
    blocks = _blocks(path, lines)
    parts = [_read_block(path, lines, block) for block in blocks]
    accounts = {part.iban or part.account for part in parts}
    if len(accounts) > 1:
        raise BankError(f"{path}: statements of {len(accounts)} accounts ({', '.join(sorted(accounts))}) "
                        f"in one file: export one account per file")
    first, last = parts[0], parts[-1]
    entries = [replace(e, position=n) for n, e in enumerate((e for p in parts for e in p.entries), 1)]
    references = [ref for part in parts for ref in part.bank_references]
    entries = with_identities(first.account, _identities(path, first.account, entries, references))
    statement_id = first.statement_id if len(parts) == 1 else f"{first.statement_id}..{last.statement_id}"
    log.info("%s: MT940, %d statement(s) of %s, %d entries", path, len(parts), first.account, len(entries))
    return Statement(source=path.name, format="mt940", account_iban=first.iban,
                     statement_id=statement_id, date=last.date, entries=entries)


def _decode(data: bytes) -> str:
    for codec in ("utf-8", "cp1252"):
        try:
            return data.decode(codec).removeprefix(BOM)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def _unwrap(lines: list[str]) -> list[str]:
    """The lines without the SWIFT envelope (``{1:...}{2:...}{4:``, ``-}{5:...}``), blank in
    its place so that line numbers stay the file's."""
    done = []
    for line in lines:
        if _ENVELOPE.match(line):
            line = line.split("{4:", 1)[1] if "{4:" in line else ""
        done.append(line)
    return done


def _blocks(path: Path, lines: list[str]) -> list[_Block]:
    """The statements, each from its ``:20:``; a statement's own ``:86:`` (one not after a
    ``:61:``) is blanked, since the library would add it to the last entry's text."""
    blocks: list[_Block] = []
    after_entry, dropping = False, False
    for index, line in enumerate(lines):
        found = _TAG.match(line)
        key: int | str = (int(found[1]) if found[1].isdigit() else found[1]) if found else ""
        if not found or key not in mt940.tags.TAG_BY_ID:  # text, or a tag the library reads as text
            if dropping:
                lines[index] = ""
            continue
        tag = found[1] + (found[2] or "")
        if key == 20:
            blocks.append(_Block(start=index))
        elif not blocks:
            raise BankError(f"{path}:{index + 1}: :{tag}: before the first :20: line: an MT940 "
                            f"statement starts with :20:, its reference")
        dropping = key == 86 and not after_entry
        after_entry = key == 61 or (after_entry and key in (86, "NS"))
        if dropping:
            lines[index] = ""
            continue
        blocks[-1].fields.append((index, tag, key))
    if not blocks:
        first = next((line.strip() for line in lines if line.strip()), "")
        raise BankError(f"{path}: not an MT940 statement: no :20: line; "
                        + (f"it starts with {_short(first, 40)!r}" if first else "the file is empty"))
    for block, following in zip(blocks, [*blocks[1:], None], strict=True):
        block.end = following.start if following else len(lines)
    return blocks


def _read_block(path: Path, lines: list[str], block: _Block) -> _Part:
    """One statement, read by the library and checked: its fields, its balances."""
    progress = _Progress()
    transactions = mt940.models.Transactions(processors=progress.processors(), options=OPTIONS)
    try:
        transactions.parse("\n".join(lines[block.start:block.end]))
    except Exception as exc:  # RuntimeError, ValueError, decimal errors... on a field it cannot read
        raise BankError(_failure(path, block, progress.read, exc)) from None
    data = transactions.data
    ref = _short(data.get("transaction_reference") or "(no reference)", 20)
    where = f"{path}:{block.start + 1}: statement {ref}"
    account = " ".join(str(data.get("account_identification") or "").split())
    if not account:
        raise BankError(f"{where}: no :25: line (the account)")
    opening = _balance(where, data, "opening", ":60F:")
    closing = _balance(where, data, "closing", ":62F:")
    lines61 = [index for index, _tag, key in block.fields if key == 61]
    entries, references = [], []
    for n, transaction in enumerate(transactions, start=1):
        line = lines61[n - 1] + 1 if n <= len(lines61) else None
        entry, reference = _entry(path, transaction.data, n, line, opening[1])
        entries.append(entry)
        references.append(reference)
    total = opening[0] + sum((e.amount for e in entries), Decimal(0))
    if total != closing[0] or opening[1] != closing[1]:
        at = next((i + 1 for i, _t, key in block.fields if key == 62), block.start + 1)
        raise BankError(f"{path}:{at}: statement {ref} does not add up: opening balance "
                        f"{opening[0]} {opening[1]} + {len(entries)} entries = {total}, but its closing "
                        f"balance is {closing[0]} {closing[1]}")
    number = data.get("statement_number")
    sequence = data.get("sequence_number")
    statement_id = f"{number}/{sequence}" if number and sequence else number or ref
    return _Part(account=_iban_in(account) or account, iban=_iban_in(account), statement_id=statement_id,
                 date=closing[2], entries=entries, bank_references=references)


def _failure(path: Path, block: _Block, read: int, exc: Exception) -> str:
    """The library's error as one line naming the field's line."""
    unparsed = isinstance(exc, RuntimeError) and len(exc.args) == 3
    index = read if unparsed else read - 1  # a field that does not match fails before its pre-processor
    if not 0 <= index < len(block.fields):
        return f"{path}:{block.start + 1}: statement cannot be read: {_short(exc)}"
    line, tag, key = block.fields[index]
    where = f"{path}:{line + 1}: :{tag}:"
    if unparsed:
        value = str(exc.args[2]).split("\n", 1)[0]
        return f"{where} {_short(value, 60)!r} does not read as {_FIELDS.get(key, 'this field')}"
    if isinstance(exc, ArithmeticError):
        return f"{where} an amount that is not a number"
    if isinstance(exc, ValueError) and re.search(r"must be in|out of range", str(exc)):
        return f"{where} a date that does not exist ({_short(exc)})"
    return f"{where} cannot be read ({type(exc).__name__}: {_short(exc)})"


def _balance(where: str, data: dict[str, Any], kind: str, tag: str) -> tuple[Decimal, str, dt.date]:
    """The statement's final or intermediate opening or closing balance: amount, currency, date."""
    balance = (data.get(f"final_{kind}_balance") or data.get(f"intermediate_{kind}_balance")
               or data.get(f"{kind}_balance"))
    if balance is None:
        raise BankError(f"{where}: no {tag} line (its {kind} balance)")
    amount = balance.amount
    if not isinstance(amount, mt940.models.Amount) or not re.fullmatch(r"[A-Z]{3}", amount.currency or ""):
        raise BankError(f"{where}: the {kind} balance has no amount or no currency")
    if not amount.amount.is_finite() or abs(amount.amount) >= MAX_AMOUNT:
        raise BankError(f"{where}: the {kind} balance {amount.amount} is not an amount")
    day = balance.date
    return amount.amount + CENTS, str(amount.currency), dt.date(day.year, day.month, day.day)


def _entry(path: Path, data: dict[str, Any], n: int, line: int | None, currency: str) -> tuple[Entry, str]:
    """One ``:61:`` and its ``:86:``, and its bank reference."""
    amount = data["amount"].amount
    if not amount.is_finite() or abs(amount) >= MAX_AMOUNT:
        raise BankError(f"{path}:{line or '?'}: :61: {amount} is not an amount")
    value_date = dt.date(data["date"].year, data["date"].month, data["date"].day)
    booked = data.get("entry_date")
    bank_reference = (data.get("bank_reference") or "").strip()
    customer_reference = (data.get("customer_reference") or "").strip()
    name, iban, text, end_to_end = _details(data)
    entry = Entry(
        identity="",
        booked_on=dt.date(booked.year, booked.month, booked.day) if booked else value_date,
        value_date=value_date,
        amount=amount + CENTS,
        position=n,
        where=f"{path.name}:{line}" if line else f"{path.name}: entry {n}",
        currency=data["amount"].currency or currency,
        counterparty=name,
        counterparty_iban=iban,
        reference=next(iter(find_references(f"{text} {customer_reference}")), None)
        or (None if customer_reference.upper() in _NO_ID else customer_reference),
        text=text[:MAX_TEXT],
        end_to_end_id=None if end_to_end.upper() in _NO_ID else end_to_end,
        bank_reference=None if bank_reference.upper() in _NO_ID else bank_reference,
    )
    return entry, bank_reference


def _details(data: dict[str, Any]) -> tuple[str, str | None, str, str]:
    """Counterparty name, its IBAN, the remittance text and the end-to-end id, from the ``:86:``."""
    raw = data.get("transaction_details")
    if raw is None and any(data.get(k) for k in ("purpose", "applicant_name", "posting_text")):
        # A German ?00..?63 structure, which the library split (and SVWZ+, EREF+ in ?20..?29).
        return (str(data.get("applicant_name") or "").strip(), _iban_in(data.get("applicant_iban")),
                str(data.get("purpose") or data.get("posting_text") or "").strip(),
                str(data.get("end_to_end_reference") or "").strip())
    text = _join(str(raw or data.get("extra_details") or ""))
    fields = _slash_fields(text)
    if not fields:
        return "", None, text, ""
    contra = fields.get("CNTP", "").split("/")  # Dutch: IBAN/BIC/NAME/CITY
    name = fields.get("NAME") or (contra[2] if len(contra) > 2 else "")
    remittance = fields.get("REMI", "")
    for prefix in ("USTD//", "STRD/CUR/", "STRD/"):
        remittance = remittance.removeprefix(prefix)
    reference = fields.get("CDTRREF", "")
    if reference and reference not in remittance:
        remittance = f"{remittance} {reference}".strip()
    return (name.strip(), _iban_in(fields.get("IBAN") or contra[0]), remittance.strip() or text,
            fields.get("EREF", "").strip())


def _join(details: str) -> str:
    """The ``:86:`` lines as one text: a line cut at the SWIFT width (65 characters, the tag
    included) goes on without a space, a shorter one ended at a word."""
    lines = details.split("\n")
    text, width = lines[0], len(lines[0]) + len(":86:")
    for line in lines[1:]:
        text += ("" if width >= SWIFT_LINE else " ") + line
        width = len(line)
    return text.strip()


def _slash_fields(text: str) -> dict[str, str]:
    """``/KEY/value`` fields (``/NAME/ACME/REMI/FA-1/``), the keys the French and Dutch banks use."""
    found = list(_SLASH.finditer(text))
    fields: dict[str, str] = {}
    for n, here in enumerate(found):
        value = text[here.end() + 1: found[n + 1].start() if n + 1 < len(found) else len(text)]
        fields.setdefault(here[1], value.strip().strip("/").strip())
    return fields


def _identities(path: Path, account: str, entries: list[Entry], references: list[str]) -> list[Entry]:
    """The bank reference as identity, unless several entries share it (some banks give
    one reference to a batch): those, and the NONREF ones, are hashed by ``with_identities``."""
    counts = Counter(ref for ref in references if ref.upper() not in _NO_ID)
    done = []
    for entry, ref in zip(entries, references, strict=True):
        if counts[ref] > 1:
            if entry.position == references.index(ref) + 1:
                log.warning("%s: bank reference %s is given to %d entries: they are told apart "
                            "by their content", path, _short(ref, 30), counts[ref])
            done.append(entry)
        else:
            done.append(replace(entry, identity=given_identity(account, ref) or ""))
    return done


def _iban_in(text: str | None) -> str | None:
    """The valid IBAN ``text`` is, or ends with (``BNPAFRPP/FR76...``)."""
    if not text:
        return None
    for candidate in ("".join(text.split()), *reversed(re.split(r"[/ ]", text.strip()))):
        try:
            return str(IBAN(candidate))
        except ValueError:  # schwifty's errors are ValueErrors
            continue
    return None


def _short(value: object, limit: int = 80) -> str:
    """``value`` on one line, at most ``limit`` characters."""
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
