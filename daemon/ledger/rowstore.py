"""Validated invoice rows kept outside memory: a sequence read back from a temporary file.

A long export must not hold every row in memory: :class:`InvoiceRows`
keeps each row as a compact record in an anonymous temporary file (in
memory only when none can be made) and reads them back on each pass, with
a compact table of the invoice numbers seen, for duplicates.
"""

from __future__ import annotations

import datetime as dt
import marshal
import os
import tempfile
import weakref
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal
from typing import IO, Any, overload

from relances.daemon.ledger.readers import (
    InvoiceRow,
)

# A record is an InvoiceRow's fields in their order, as builtins: dates as ordinals,
# amounts as text, and the line alone in place of ``where``.
_ROW_FIELDS = tuple(InvoiceRow.__dataclass_fields__)
_NUMBER, _LINE = _ROW_FIELDS.index("number"), _ROW_FIELDS.index("where")
assert _ROW_FIELDS == (
    "customer_code", "customer_name", "affiliate_code", "email", "number", "invoice_date",
    "due_date", "total", "remaining", "payment_method", "settlement", "assignment",
    "representative", "level", "last_reminded_on", "pdf_path", "customer_kind", "where",
    "customer_siren", "customer_vat")
assert not hasattr(InvoiceRow, "__post_init__") and not hasattr(InvoiceRow, "__slots__")


class _Numbers:
    """The invoice numbers of the rows read so far, for the duplicate check.

    An open-addressing table of the numbers' hashes and of their rows'
    indexes, in two arrays: 12 bytes a slot where a dict of the strings
    would take a hundred.  Two numbers of the same hash are told apart by
    reading the earlier row back.
    """

    def __init__(self) -> None:
        self._hashes = array("q", bytes(8 * 1024))
        self._indexes = array("I", bytes(4 * 1024))
        self._used = 0

    def claim(self, number: str, index: int, number_at: Callable[[int], str]) -> int | None:
        """The index of the earlier row holding ``number``; else None, and ``number``
        is now the row ``index``'s."""
        hashed = hash(number) or 1  # 0 marks a free slot
        hashes, mask = self._hashes, len(self._hashes) - 1
        slot = hashed & mask
        while (found := hashes[slot]) != 0:
            if found == hashed and number_at(self._indexes[slot]) == number:
                return self._indexes[slot]
            slot = (slot + 1) & mask
        hashes[slot] = hashed
        self._indexes[slot] = index
        self._used += 1
        if 2 * self._used > len(hashes):
            self._grow()
        return None

    def _grow(self) -> None:
        old = zip(self._hashes, self._indexes, strict=True)
        size = 2 * len(self._hashes)
        self._hashes = hashes = array("q", bytes(8 * size))
        self._indexes = indexes = array("I", bytes(4 * size))
        mask = size - 1
        for hashed, index in old:
            if hashed:
                slot = hashed & mask
                while hashes[slot]:
                    slot = (slot + 1) & mask
                hashes[slot] = hashed
                indexes[slot] = index


class InvoiceRows(Sequence[InvoiceRow]):
    """The validated rows of an invoice file, as a sequence read back as it is iterated.

    Each row is kept as a tuple of builtins, marshalled a batch at a time to
    an anonymous temporary file (in memory when none can be made), so that
    an export of a million invoices does not take gigabytes of objects;
    every iteration reads the batches back and builds the rows again.
    """

    BATCH = 2000

    def __init__(self, source: str) -> None:
        self.source = source
        self._pending: list[tuple[Any, ...]] = []  # the last batch, not written yet
        self._batches: list[tuple[int, int]] = []  # offset and size of each written batch
        self._kept: list[bytes] | None = None  # the batches, when there is no spill file
        self._spill: IO[bytes] | None = None
        self._end = 0
        self._length = 0
        self._numbers = _Numbers()
        self._days: dict[int, dt.date] = {}
        self.customers: dict[str, dict[str, Any]] = {}  # see customer_values()

    def claim(self, number: str) -> int | str | None:
        """The line of the earlier row numbered ``number``; else None, and the next
        row appended holds it."""
        index = self._numbers.claim(number, self._length, self._number_at)
        return None if index is None else self._record(index)[_LINE]  # type: ignore[no-any-return]

    def _number_at(self, index: int) -> str:
        return str(self._record(index)[_NUMBER])

    def append(self, record: tuple[Any, ...]) -> None:
        code = record[0]
        values = self.customers.get(code)
        if values is None:
            values = self.customers[code] = {}
        fold_customer(values, code, record[1], record[2], record[3], record[16], record[18],
                      record[19])
        self._pending.append(record)
        self._length += 1
        if len(self._pending) == self.BATCH:
            self._write(marshal.dumps(self._pending))
            self._pending = []

    def _write(self, data: bytes) -> None:
        if self._spill is None and self._kept is None:
            try:
                self._spill = tempfile.TemporaryFile(prefix="relances-import-")  # noqa: SIM115
            except OSError:  # no temporary folder to write in: keep the batches here
                self._kept = []
            else:
                weakref.finalize(self, self._spill.close)
        if self._spill is not None:
            try:
                self._spill.write(data)
                self._spill.flush()
            except OSError:  # the temporary folder is full: the batches come here
                self._spill.seek(0)
                self._kept = [self._spill.read(size) for _, size in self._batches]
                self._spill.close()
                self._spill = None
        if self._kept is not None:
            self._kept.append(data)
        self._batches.append((self._end, len(data)))
        self._end += len(data)

    def close(self) -> None:
        """Let the spill file go (the rows can no longer be read)."""
        if self._spill is not None:
            self._spill.close()

    def _batch(self, number: int) -> list[tuple[Any, ...]]:
        if number == len(self._batches):
            return self._pending
        if self._kept is not None:
            data = self._kept[number]
        else:
            assert self._spill is not None
            offset, size = self._batches[number]
            data = os.pread(self._spill.fileno(), size, offset)
        records: list[tuple[Any, ...]] = marshal.loads(data)
        return records

    def _record(self, index: int) -> tuple[Any, ...]:
        return self._batch(index // self.BATCH)[index % self.BATCH]

    def _rows(self, records: Iterable[tuple[Any, ...]]) -> Iterator[InvoiceRow]:
        """The rows of records, each a new InvoiceRow given its ``__dict__`` whole:
        the instance ``InvoiceRow(*fields)`` would make (a frozen dataclass's
        ``__init__`` does no more than set each field, in order), at a third of
        the cost of calling it."""
        source, days, day = self.source, self._days, dt.date.fromordinal
        new, set_dict = object.__new__, object.__setattr__
        for (code, name, affiliate, email, number, invoiced, due, total, remaining, method,
             settlement, assignment, representative, level, reminded, pdf, kind, line, siren,
             vat) in records:
            row = new(InvoiceRow)
            set_dict(row, "__dict__", {
                "customer_code": code, "customer_name": name, "affiliate_code": affiliate,
                "email": email, "number": number,
                "invoice_date": days.get(invoiced) or days.setdefault(invoiced, day(invoiced)),
                "due_date": days.get(due) or days.setdefault(due, day(due)),
                "total": Decimal(total), "remaining": Decimal(remaining),
                "payment_method": method, "settlement": settlement, "assignment": assignment,
                "representative": representative, "level": level,
                "last_reminded_on": None if reminded is None else (
                    days.get(reminded) or days.setdefault(reminded, day(reminded))),
                "pdf_path": pdf, "customer_kind": kind,
                "where": f"{source}:{line}" if line.__class__ is int else f"{source}: {line}",
                "customer_siren": siren, "customer_vat": vat})
            yield row

    def parts(self) -> Iterator[tuple[list[str], Iterator[InvoiceRow]]]:
        """The rows a batch at a time: the batch's invoice numbers, and its rows, each
        built as it is taken (and gone once used, rather than kept with the batch)."""
        for number in range(len(self._batches) + 1):
            records = self._batch(number)
            if records:
                yield [record[_NUMBER] for record in records], self._rows(records)

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[InvoiceRow]:
        for number in range(len(self._batches) + 1):
            yield from self._rows(self._batch(number))

    @overload
    def __getitem__(self, index: int) -> InvoiceRow: ...

    @overload
    def __getitem__(self, index: slice) -> list[InvoiceRow]: ...

    def __getitem__(self, index: int | slice) -> InvoiceRow | list[InvoiceRow]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._length))]
        if index < 0:
            index += self._length
        if not 0 <= index < self._length:
            raise IndexError("invoice row index out of range")
        return next(self._rows([self._record(index)]))


def fold_customer(values: dict[str, Any], code: str, name: str, affiliate_code: str | None,
                  email: str | None, kind: str | None, siren: str | None,
                  vat_number: str | None) -> None:
    """What one invoice row says of its customer, over what the rows before it said:
    a non-empty cell wins, a name that is only the code says nothing."""
    if name and name != code:
        values["name"] = name
    if affiliate_code:
        values["affiliate_code"] = affiliate_code
    if email:
        values["email"] = email
    if kind:
        values["kind"] = kind
    if siren:
        values["siren"] = siren
    if vat_number:
        values["vat_number"] = vat_number


def customer_values(rows: Iterable[InvoiceRow]) -> dict[str, dict[str, Any]]:
    """What invoice rows say of each customer, by code in the order they first
    appear (see :func:`fold_customer`); read as the rows were, for InvoiceRows."""
    if isinstance(rows, InvoiceRows):
        return {code: dict(values) for code, values in rows.customers.items()}
    customers: dict[str, dict[str, Any]] = {}
    for row in rows:
        values = customers.get(row.customer_code)
        if values is None:
            values = customers[row.customer_code] = {}
        fold_customer(values, row.customer_code, row.customer_name, row.affiliate_code, row.email,
                      row.customer_kind, row.customer_siren, row.customer_vat)
    return customers
