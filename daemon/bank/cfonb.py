"""Reading CFONB 120 statements: the French 120-character "relevé de compte".

No maintained library reads this format on PyPI, so this is a small reader of
its own, after the CFONB layout ("Relevé de compte sur support informatique",
and its 2007 update for SEPA transfers).  Records are 120 characters, one a
line (CRLF or LF), or one after the other without line breaks.  By their
first two characters: ``01`` the old balance of an account, ``04`` a
movement, ``05`` a complement of the ``04`` before it, ``07`` the new
balance.  Columns (1-based) of all of them: bank 3-7, branch 12-16, currency
17-19, number of decimals 20, account number 22-32, date 35-40 (DDMMYY).
Of a ``01``/``07``: the balance 91-104.  Of a ``04``: the value date 43-48,
the label 49-79, the entry number 82-88, the amount 91-104 (13 digits and a
signed "overpunch" character: ``{`` ``A``-``I`` for +0..+9, ``}`` ``J``-``R``
for -0..-9) and the bank's reference 105-120.  Of a ``05``: a qualifier
46-48 and its text 49-118: ``LIB``, ``LCC``, ``LC2`` (or none) are added to
the label; ``NPY`` is the payer's name, ``NBE`` the payee's; ``RCN``'s first
35 characters the remitter's reference (the SEPA end-to-end id, added to
the text too: payers put their invoice numbers there); ``LCS``'s
first 36 the structured reference; ``REF`` the bank's reference.  Other
qualifiers are left out.

The file gives no IBAN: ``account_iban`` is None and an entry's account is
"bank/branch/account".  Identity: that account, the entry number and the
accounting date, when the entry number is not blank (nor zeros), else the
statements' hash; an identity given twice in one file gets ``#2``.

Refused, with one :class:`BankError` line naming the file, the line (the
record, in a file without line breaks) and the columns: a record that is not
120 characters, an unknown record code, a currency that is not three
letters, a number of decimals that is not a digit, an invalid date, an
amount that is not 13 digits and an overpunch character, a ``05`` that does
not follow a ``04`` of its account; and a file whose old balance plus its
movements is not its new balance, for an account with both balances.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path

from stdnum import iso11649

from relances.daemon.bank.statements import (
    MAX_STATEMENT_BYTES,
    Entry,
    Statement,
    given_identity,
    with_identities,
)
from relances.daemon.errors import BankError

log = logging.getLogger(__name__)

RECORD = 120
CODES = {"01": "old balance", "04": "movement", "05": "complement", "07": "new balance"}
_POSITIVE = "{ABCDEFGHI"
_NEGATIVE = "}JKLMNOPQR"
_TEXT_QUALIFIERS = {"", "LIB", "LCC", "LC2"}
_DIGITS = re.compile(r"[0-9]+")
MAX_TEXT = 1000
MAX_FIELD = 140


@dataclass(frozen=True)
class _Record:
    text: str
    path: Path
    number: int  # 1-based
    unit: str  # "line", or "record" in a file without line breaks

    @property
    def at(self) -> str:
        return f"{self.unit} {self.number}"

    @property
    def where(self) -> str:
        return f"{self.path}: {self.at}"


@dataclass
class _Movement:
    """A ``04`` and what its ``05`` add."""

    record: _Record
    account: str
    booked_on: dt.date
    value_date: dt.date | None
    amount: Decimal
    currency: str
    number: str
    label: str
    bank_reference: str
    details: list[tuple[str, str]] = field(default_factory=list)  # (qualifier, text), in file order


@dataclass
class _Balances:
    """Per account: the open ``01`` (its record and amount) and the movements since."""

    open: dict[str, tuple[_Record, Decimal, Decimal]] = field(default_factory=dict)
    closed: list[dt.date] = field(default_factory=list)


def looks_like(data: bytes) -> bool:
    """True when the first record is a 120-character ``01`` (a line, or the file cut every 120)."""
    data = data.removeprefix(b"\xef\xbb\xbf")
    if not data.startswith(b"01"):
        return False
    head = data[: RECORD + 2]
    if b"\n" in head or b"\r" in head:
        return len(re.split(rb"\r\n|\r|\n", head, maxsplit=1)[0]) == RECORD
    if b"\n" in data or b"\r" in data:
        return False
    return len(_decode(data).rstrip("\x1a")) % RECORD == 0


def read(path: Path, data: bytes) -> Statement:
    """The statement a CFONB 120 file holds; BankError names the line, the columns and what is wrong."""
    if len(data) > MAX_STATEMENT_BYTES:
        raise BankError(f"{path}: {len(data)} bytes: larger than a statement can be")
    balances = _Balances()
    movements: list[_Movement] = []
    current: _Movement | None = None  # the 04 a 05 may complete
    for record in _records(path, data):
        code = record.text[:2]
        if code not in CODES:
            raise BankError(f"{record.where}, columns 1-2: record code {code!r} is not a CFONB 120 one "
                            f"(01, 04, 05 or 07)")
        if code == "04":
            current = _movement(record)
            movements.append(current)
            _count(balances, current)
        elif code == "05":
            _complement(record, current)
        else:
            current = None
            _balance(record, balances)
    entries = _entries(movements)
    dates = balances.closed or [entry.booked_on for entry in entries]
    return Statement(source=path.name, format="cfonb120", account_iban=None, statement_id=None,
                     date=max(dates) if dates else None, entries=entries)


def _decode(data: bytes) -> str:
    """UTF-8 if it is, else Windows-1252 (Latin-1 for its few undefined bytes)."""
    for encoding in ("utf-8", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def _records(path: Path, data: bytes) -> list[_Record]:
    text = _decode(data).removeprefix("\ufeff").rstrip("\x1a")
    if "\n" in text or "\r" in text:
        lines = re.split(r"\r\n|\r|\n", text)
        while lines and not lines[-1].strip("\x1a "):
            lines.pop()
        records = [_Record(line, path, n, "line") for n, line in enumerate(lines, 1)]
    else:
        records = [_Record(text[i:i + RECORD], path, i // RECORD + 1, "record")
                   for i in range(0, len(text), RECORD)]
    if not records:
        raise BankError(f"{path}: empty: no CFONB 120 record")
    for record in records:
        if len(record.text) != RECORD:
            raise BankError(f"{record.where}, columns 1-{len(record.text)}: {len(record.text)} characters "
                            f"where a CFONB 120 record has 120")
    if not records[0].text.startswith("01"):
        raise BankError(f"{records[0].where}, columns 1-2: the file starts with {records[0].text[:2]!r}, "
                        f"not with an old balance (01): not a CFONB 120 statement")
    return records


def _columns(record: _Record, first: int, last: int) -> str:
    """Columns ``first``-``last`` (1-based, inclusive) of the record."""
    return record.text[first - 1:last]


def _account(record: _Record) -> str:
    return "/".join(_columns(record, a, b).strip() for a, b in ((3, 7), (12, 16), (22, 32)))


def _optional_date(record: _Record, first: int) -> dt.date | None:
    """The DDMMYY date at ``first``, None when blank or zeros."""
    return None if _columns(record, first, first + 5).strip(" 0") == "" else _date(record, first)


def _date(record: _Record, first: int) -> dt.date:
    """The DDMMYY date at ``first`` (years 80-99 are 1980-1999, the others 2000-2079)."""
    text = _columns(record, first, first + 5)
    try:
        if not _DIGITS.fullmatch(text):
            raise ValueError(text)
        year = int(text[4:])
        return dt.date(2000 + year if year < 80 else 1900 + year, int(text[2:4]), int(text[:2]))
    except ValueError:
        raise BankError(f"{record.where}, columns {first}-{first + 5}: {text!r} is not a date "
                        f"(DDMMYY)") from None


def _amount(record: _Record) -> Decimal:
    """Columns 91-104 with the number of decimals of column 20."""
    decimals = _columns(record, 20, 20)
    if not _DIGITS.fullmatch(decimals):
        raise BankError(f"{record.where}, column 20: the number of decimals {decimals!r} is not a digit")
    text = _columns(record, 91, 104)
    digits, last = text[:13], text[13]
    if not _DIGITS.fullmatch(digits) or last not in _POSITIVE + _NEGATIVE:
        raise BankError(f"{record.where}, columns 91-104: {text!r} is not a CFONB amount (13 digits and "
                        f"a sign character: {{ or A-I for +0..+9, }} or J-R for -0..-9)")
    positive = last in _POSITIVE
    value = int(digits + str((_POSITIVE if positive else _NEGATIVE).index(last)))
    return Decimal(value if positive else -value).scaleb(-int(decimals))


def _currency(record: _Record) -> str:
    currency = _columns(record, 17, 19)
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise BankError(f"{record.where}, columns 17-19: currency {currency!r} is not three letters")
    return currency


def _movement(record: _Record) -> _Movement:
    return _Movement(
        record=record, account=_account(record), booked_on=_date(record, 35),
        value_date=_optional_date(record, 43), amount=_amount(record),
        currency=_currency(record), number=_columns(record, 82, 88).strip(),
        label=" ".join(_columns(record, 49, 79).split()),
        bank_reference=_columns(record, 105, 120).strip())


def _count(balances: _Balances, movement: _Movement) -> None:
    if movement.account in balances.open:
        record, old, total = balances.open[movement.account]
        balances.open[movement.account] = (record, old, total + movement.amount)


def _balance(record: _Record, balances: _Balances) -> None:
    """A ``01`` opens the account's count, a ``07`` closes it: they must agree."""
    account, date, amount = _account(record), _date(record, 35), _amount(record)
    _currency(record)
    if record.text.startswith("01"):
        if account in balances.open:
            log.warning("%s: a new old balance for %s before the new balance of %s: not checked",
                        record.where, account, balances.open[account][0].where)
        balances.open[account] = (record, amount, Decimal(0))
        return
    balances.closed.append(date)
    if account not in balances.open:
        return
    opened, old, total = balances.open.pop(account)
    if old + total != amount:
        raise BankError(f"{record.where}, columns 91-104: account {account}: the new balance {amount} "
                        f"is not the old balance {old} ({opened.at}) plus the movements {total} "
                        f"(= {old + total}): the file does not add up")


def _complement(record: _Record, movement: _Movement | None) -> None:
    if movement is None:
        raise BankError(f"{record.where}, columns 1-2: a complement (05) that does not follow a "
                        f"movement (04)")
    if _account(record) != movement.account:
        raise BankError(f"{record.where}, columns 3-32: the complement (05) is for account "
                        f"{_account(record)}, its movement (04, {movement.record.where}) for "
                        f"{movement.account}")
    qualifier = _columns(record, 46, 48).strip()
    movement.details.append((qualifier, _columns(record, 49, 118)))


def _entries(movements: list[_Movement]) -> list[Entry]:
    """The entries, with identities given by account."""
    entries = [_entry(position, movement) for position, movement in enumerate(movements, 1)]
    by_account: dict[str, list[int]] = {}
    for index, movement in enumerate(movements):
        by_account.setdefault(movement.account, []).append(index)
    for account, indexes in by_account.items():
        for index, entry in zip(indexes, with_identities(account, [entries[i] for i in indexes]),
                                strict=True):
            entries[index] = entry
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        seen[entry.identity] = seen.get(entry.identity, 0) + 1
        if seen[entry.identity] > 1:
            entries[index] = replace(entry, identity=f"{entry.identity}#{seen[entry.identity]}")
    return entries


def _entry_where(record: _Record) -> str:
    """``file:line``, or ``file: record 3`` in a file without line breaks."""
    name = record.path.name
    return f"{name}:{record.number}" if record.unit == "line" else f"{name}: {record.at}"


def _entry(position: int, movement: _Movement) -> Entry:
    def joined(*qualifiers: str, width: int = 70, limit: int = MAX_FIELD) -> str:
        texts = (" ".join(text[:width].split()) for q, text in movement.details if q in qualifiers)
        return " ".join(text for text in texts if text)[:limit]

    payer, payee = joined("NPY"), joined("NBE")
    remitter = joined("RCN", width=35)
    texts = [movement.label, joined(*_TEXT_QUALIFIERS, limit=MAX_TEXT), remitter]
    structured = joined("LCS", width=36)
    if not structured and remitter and iso11649.is_valid(remitter):
        structured = iso11649.compact(remitter)
    number = movement.number if movement.number.strip("0") else ""
    given = given_identity(movement.account, f"{number}:{movement.booked_on.isoformat()}") if number else None
    return Entry(
        identity=given or "", booked_on=movement.booked_on, amount=movement.amount, position=position,
        where=_entry_where(movement.record), value_date=movement.value_date,
        currency=movement.currency,
        counterparty=(payer or payee) if movement.amount > 0 else (payee or payer),
        reference=structured or None, text=" ".join(t for t in texts if t)[:MAX_TEXT],
        end_to_end_id=remitter if given_identity(None, remitter) else None,
        bank_reference=joined("REF") or movement.bank_reference or None)
