"""Reading a FEC file into checked lines; the rules are in :mod:`relances.daemon.ledger.fec`.

Everything here is strict: a FEC is a legal format, so a cell that does not
follow it refuses the whole file with a :class:`LedgerError` naming the
file, the line and the column.  Header names are compared case-insensitively
(``MontantDevise`` is ``Montantdevise``).  Cells are split on the separator
only (the norm has no quoting); trailing empty cells beyond the header are
dropped.  Amounts have at most two decimals, a dot or a comma, no thousands
separator, an optional sign (a negative debit counts as a credit).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from relances.daemon.errors import LedgerError
from relances.daemon.ledger import infiles
from relances.daemon.ledger.parsing import CENT

COLUMNS = ("JournalCode", "JournalLib", "EcritureNum", "EcritureDate", "CompteNum", "CompteLib",
           "CompAuxNum", "CompAuxLib", "PieceRef", "PieceDate", "EcritureLib", "Debit", "Credit",
           "EcritureLet", "DateLet", "ValidDate", "Montantdevise", "Idevise")
SIGNED_COLUMNS = (*COLUMNS[:11], "Montant", "Sens", *COLUMNS[13:])
# Extra trailing columns holding a due date AAAAMMJJ (compared case-insensitively).
DUE_COLUMNS = frozenset({"dateecheance", "echeancedate", "dateech", "echeance"})
MAX_BYTES = 50 * 1024 * 1024  # a small business's FEC is a few MiB
MAX_LINE = 4096

_DATE = re.compile(r"[0-9]{8}")
_AMOUNT = re.compile(r"[+-]?(?:[0-9]{1,15}(?:[.,][0-9]{0,2})?|[.,][0-9]{1,2})")
_FOREIGN = re.compile(r"[+-]?(?:[0-9]{1,15}(?:[.,][0-9]{0,6})?|[.,][0-9]{1,6})")
_DATES = ("EcritureDate", "PieceDate", "DateLet", "ValidDate")
_REQUIRED = ("JournalCode", "EcritureNum", "CompteNum")
_SENS = {"d": 1, "+1": 1, "1": 1, "c": -1, "-1": -1}
ZERO = Decimal("0.00")


@dataclass(frozen=True)
class FecLine:
    """One checked line of the file."""

    line: int
    journal: str
    entry: str  # EcritureNum
    entry_date: dt.date
    account: str  # CompteNum
    account_label: str
    aux: str  # CompAuxNum
    aux_label: str
    piece: str  # PieceRef
    piece_date: dt.date | None
    label: str  # EcritureLib
    amount: Decimal  # debit minus credit, to the cent
    letter: str  # EcritureLet
    due: dt.date | None  # the extra due-date column, when there is one

    @property
    def entry_key(self) -> tuple[str, str]:
        return (self.journal, self.entry)

    @property
    def date(self) -> dt.date:
        return self.piece_date or self.entry_date


@dataclass(frozen=True)
class Header:
    separator: str
    names: tuple[str, ...]  # the 18 columns as the norm spells them, then the extra ones
    signed: bool  # Montant + Sens instead of Debit + Credit
    due: int | None  # index of the due-date column


def _show(text: str) -> str:
    return repr(text) if len(text) <= 40 else repr(text[:40]) + "…"


def _separator(first: str) -> str | None:
    counts = {sep: first.count(sep) for sep in ("\t", "|")}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] else None


def _cells(line: str, separator: str) -> list[str]:
    return [cell.strip() for cell in line.split(separator)]


def header_problem(names: list[str]) -> str | None:
    """What is wrong with a header (the first missing or misplaced column), or None."""
    signed = len(names) > 11 and names[11].casefold() == "montant"
    folded = [name.casefold() for name in names]
    for index, name in enumerate(SIGNED_COLUMNS if signed else COLUMNS):
        if index < len(folded) and folded[index] == name.casefold():
            continue
        if name.casefold() in folded:
            return (f"column {name!r}: found as column {folded.index(name.casefold()) + 1}, "
                    f"expected as column {index + 1}")
        return f"column {name!r}: missing (expected as column {index + 1})"
    return None


def looks_like_fec(head: str) -> bool:
    """True when ``head`` (a file's start) begins with a FEC header line."""
    first = head.removeprefix("\ufeff").split("\n", 1)[0].rstrip("\r")
    separator = _separator(first)
    return separator is not None and header_problem(_cells(first, separator)) is None


def _header(path: Path, number: int, line: str) -> Header:
    separator = _separator(line)
    if separator is None:
        raise LedgerError(f"{path}:{number}: not a FEC header: no tab or pipe separator")
    names = _cells(line, separator)
    while len(names) > len(COLUMNS) and not names[-1]:
        names.pop()
    problem = header_problem(names)
    if problem:
        raise LedgerError(f"{path}:{number}: {problem}")
    signed = names[11].casefold() == "montant"
    extra = [name.casefold() for name in names[len(COLUMNS):]]
    due = next((len(COLUMNS) + i for i, name in enumerate(extra) if name in DUE_COLUMNS), None)
    canonical = SIGNED_COLUMNS if signed else COLUMNS
    return Header(separator, (*canonical, *names[len(COLUMNS):]), signed, due)


def _date(where: str, name: str, text: str) -> dt.date | None:
    if not text:
        return None
    if _DATE.fullmatch(text):
        try:
            return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
        except ValueError:
            pass
    raise LedgerError(f"{where}: column {name!r}: not a date AAAAMMJJ: {_show(text)}")


def _amount(where: str, name: str, text: str, pattern: re.Pattern[str] = _AMOUNT) -> Decimal:
    if not text:
        return ZERO
    if not pattern.fullmatch(text):
        raise LedgerError(f"{where}: column {name!r}: not an amount: {_show(text)}")
    return Decimal(text.replace(",", "."))


def _net(where: str, values: dict[str, str], signed: bool) -> Decimal:
    if not signed:
        debit = _amount(where, "Debit", values["Debit"])
        return (debit - _amount(where, "Credit", values["Credit"])).quantize(CENT)
    amount = _amount(where, "Montant", values["Montant"]).quantize(CENT)
    sens = _SENS.get(values["Sens"].casefold())
    if sens is None and (values["Sens"] or amount):
        raise LedgerError(f"{where}: column 'Sens': not D, C, +1 or -1: {_show(values['Sens'])}")
    return amount if sens != -1 else -amount


def _line(path: Path, number: int, header: Header, cells: list[str]) -> FecLine:
    where = f"{path}:{number}"
    size = len(header.names)
    while len(cells) > size and not cells[-1]:
        cells.pop()
    if len(cells) < size:
        raise LedgerError(f"{where}: {len(cells)} fields instead of {size} (as in the header): "
                          f"column {header.names[len(cells)]!r} is missing")
    if len(cells) > size:
        raise LedgerError(f"{where}: {len(cells)} fields instead of {size} (as in the header)")
    values = dict(zip(header.names[:len(COLUMNS)], cells, strict=False))
    for name in _REQUIRED:
        if not values[name]:
            raise LedgerError(f"{where}: column {name!r}: value is missing")
    dates = {name: _date(where, name, values[name]) for name in _DATES}
    due = None if header.due is None else _date(where, header.names[header.due], cells[header.due])
    _amount(where, "Montantdevise", values["Montantdevise"], _FOREIGN)
    entry_date = dates["EcritureDate"]
    if entry_date is None:
        raise LedgerError(f"{where}: column 'EcritureDate': value is missing")
    return FecLine(
        line=number, journal=values["JournalCode"], entry=values["EcritureNum"],
        entry_date=entry_date, account=values["CompteNum"], account_label=values["CompteLib"],
        aux=values["CompAuxNum"], aux_label=values["CompAuxLib"], piece=values["PieceRef"],
        piece_date=dates["PieceDate"], label=values["EcritureLib"],
        amount=_net(where, values, header.signed), letter=values["EcritureLet"], due=due)


def _text(path: Path) -> str:
    with infiles.open_binary(path) as handle:
        raw = infiles.read_up_to(handle, path, MAX_BYTES + 1)
    if len(raw) > MAX_BYTES:
        raise LedgerError(f"{path}: larger than {MAX_BYTES // 2**20} MiB: not read")
    if b"\0" in raw:
        raise LedgerError(f"{path}: contains NUL bytes: not a text file (UTF-16?)")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("iso-8859-15")


def _numbered(path: Path, text: str) -> Iterator[tuple[int, str]]:
    # split("\n"), not splitlines(): form feeds and U+2028 are not line ends.
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.removesuffix("\r")
        if len(line) > MAX_LINE:
            raise LedgerError(f"{path}:{number}: longer than {MAX_LINE} characters")
        if line.strip():
            yield number, line


def check_balanced(path: Path, lines: list[FecLine]) -> None:
    """Every entry (EcritureNum within its journal) has as many debits as credits."""
    first: dict[tuple[str, str], int] = {}
    debits: dict[tuple[str, str], Decimal] = {}
    credits: dict[tuple[str, str], Decimal] = {}
    for line in lines:
        key = line.entry_key
        first.setdefault(key, line.line)
        debits[key] = debits.get(key, ZERO) + max(line.amount, ZERO)
        credits[key] = credits.get(key, ZERO) + max(-line.amount, ZERO)
    for key, number in first.items():
        if debits[key] != credits[key]:
            raise LedgerError(f"{path}:{number}: column 'EcritureNum': entry {key[1]} of journal "
                              f"{key[0]} is not balanced: debits {debits[key]}, "
                              f"credits {credits[key]}")


def read_fec(path: Path) -> list[FecLine]:
    """Every line of the file after the header, checked; raises on the first bad cell."""
    rows = _numbered(path, _text(path))
    first = next(rows, None)
    if first is None:
        raise LedgerError(f"{path}:1: the file is empty")
    header = _header(path, *first)
    lines = [_line(path, number, header, _cells(row, header.separator)) for number, row in rows]
    check_balanced(path, lines)
    return lines
