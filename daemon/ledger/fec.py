"""The customers' receivables as a FEC (Fichier des Écritures Comptables) shows them.

Read: the 18 columns of article A47 A-1 LPF, tab or pipe, UTF-8 (BOM or not)
or ISO-8859-15, Debit/Credit or Montant/Sens, extra trailing columns allowed
(a DateEcheance/EcheanceDate column gives the due date, else PieceDate plus
``payment_terms_days``).  Customer lines: CompteNum starts with
``customer_prefix``; the customer is CompAuxNum, or CompteNum when it is empty.

Invoices: a customer debit, by PieceRef (debits of one piece add up), in any
entry without a treasury line (class 5).  Opening entries (journal AN/RAN,
label "A nouveau") detailing invoices are invoices; an aggregated opening
balance (PieceRef empty, generic or shared by several customers) is one item
``AN-<customer>-<AAAAMMJJ>`` labelled "Solde à nouveau".

Settlement: a lettered line (EcritureLet, per customer; lower-case "partial"
codes included) is matched and spent; an invoice whose lines are all lettered
is settled, with a 416 or 654 reason when a lettering credit's entry has such
a line.  Unlettered customer credits (payments, credit notes, transfers)
reduce the invoices they name as a word of PieceRef or EcritureLib, then,
with what is left, the customer's open invoices oldest first.  Unlettered
customer debits of treasury entries (refunds, rejected payments) are no
invoices: they take back unassigned credit.  Remaining never goes below 0.

Refused whole (see :mod:`relances.daemon.ledger.fec_checks`): a wrong header,
a date not AAAAMMJJ, an amount that does not parse, an unbalanced entry, a
row with a wrong number of fields, a file over 50 MiB or a line over 4096
characters, an invoice debit without PieceRef, one PieceRef on two customers.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from relances.daemon.errors import LedgerError
from relances.daemon.ledger.cells import INVOICE_LENGTHS, control_in
from relances.daemon.ledger.fec_checks import ZERO, FecLine, looks_like_fec, read_fec
from relances.daemon.ledger.parsing import fold
from relances.daemon.ledger.readers import InvoiceRow

__all__ = ["FecLedger", "fec_ledger", "looks_like_fec"]

log = logging.getLogger(__name__)

LETTERED = "Lettrée dans la comptabilité"
DOUBTFUL = "Passée en créances douteuses (416) dans la comptabilité"
LOSS = "Passée en perte (654) dans la comptabilité"
CREDIT_NOTE = "Annulée par avoir dans la comptabilité"
PAID = "Réglée dans la comptabilité (règlement non lettré)"
OPENING_LABEL = "Solde à nouveau"
_OPENING_JOURNALS = frozenset({"an", "ran"})
_GENERIC_REFS = frozenset({"an", "ran", "ano", "ouverture", "report"})
_WORD = re.compile(r"[\w/.-]+")

Key = tuple[str, str]


@dataclass(frozen=True)
class FecLedger:
    invoices: list[InvoiceRow]  # every invoice the FEC shows on a customer account, open or settled
    settled: dict[str, str]  # invoice number -> French reason, for those settled (remaining 0)
    labels: dict[str, str]  # invoice number -> label ("Solde à nouveau")
    customers: dict[str, str]  # customer code -> name
    lines: int  # lines read (without the header)


@dataclass(frozen=True)
class _Entry:
    """What an entry (EcritureNum within its journal) holds besides the customer lines."""

    opening: bool
    treasury: bool  # a class-5 line (bank, cash): a payment or a refund
    sales: bool  # a class-7 line: a credit on the customer is a credit note
    doubtful: bool  # a 416 line
    loss: bool  # a 654 line

    @property
    def reason(self) -> str:
        """Why a customer credit of this entry settles what it reduces."""
        if self.loss:
            return LOSS
        if self.doubtful:
            return DOUBTFUL
        return CREDIT_NOTE if self.sales and not self.treasury else PAID


@dataclass
class _Invoice:
    customer: str
    number: str
    label: str | None
    lines: list[FecLine] = field(default_factory=list)
    open: Decimal = ZERO
    reasons: list[str] = field(default_factory=list)

    @property
    def order(self) -> tuple[dt.date, int]:
        return (min(line.date for line in self.lines), self.lines[0].line)

    def reduce(self, amount: Decimal, reason: str) -> Decimal:
        """Take what ``amount`` can pay of this invoice; returns what is left of it."""
        used = min(amount, self.open)
        if used <= 0:
            return amount
        self.open -= used
        self.reasons.append(reason)
        return amount - used


def _customer(line: FecLine) -> str:
    return line.aux or line.account


def _entries(lines: list[FecLine]) -> dict[Key, _Entry]:
    grouped: dict[Key, list[FecLine]] = defaultdict(list)
    for line in lines:
        grouped[line.entry_key].append(line)
    entries: dict[Key, _Entry] = {}
    for key, group in grouped.items():
        opening = (key[0].casefold() in _OPENING_JOURNALS
                   or any(fold(line.label).startswith("a nouveau") for line in group))
        accounts = [line.account for line in group]
        entries[key] = _Entry(
            opening=opening,
            treasury=not opening and any(a.startswith("5") for a in accounts),
            sales=any(a.startswith("7") for a in accounts),
            doubtful=any(a.startswith("416") for a in accounts),
            loss=any(a.startswith("654") for a in accounts))
    return entries


def _generic_refs(lines: list[FecLine]) -> set[str]:
    """PieceRefs shared by the opening debits of several customers."""
    owners: dict[str, set[str]] = defaultdict(set)
    for line in lines:
        owners[line.piece.casefold()].add(_customer(line))
    return {ref for ref, who in owners.items() if len(who) > 1}


def _aggregated(line: FecLine, generic: set[str]) -> bool:
    """An opening debit whose PieceRef names no invoice."""
    ref, journal = line.piece.casefold(), line.journal.casefold()
    return (not ref or ref in generic or ref == line.entry.casefold() or ref in _GENERIC_REFS
            or "nouveau" in fold(ref) or (len(journal) >= 2 and ref.startswith(journal)))


def _invoices(path: Path, lines: list[FecLine], entries: dict[Key, _Entry]) -> dict[str, _Invoice]:
    """Invoices by number, in file order."""
    debits = [line for line in lines if line.amount > 0 and not entries[line.entry_key].treasury]
    generic = _generic_refs([line for line in debits if entries[line.entry_key].opening])
    invoices: dict[str, _Invoice] = {}
    for line in debits:
        customer = _customer(line)
        if entries[line.entry_key].opening and _aggregated(line, generic):
            number, label = f"AN-{customer}-{line.date:%Y%m%d}", OPENING_LABEL
        elif line.piece:
            number, label = line.piece, None
        else:
            raise LedgerError(f"{path}:{line.line}: column 'PieceRef': value is missing "
                              f"(a debit of {line.amount} on customer {customer})")
        invoice = invoices.setdefault(number, _Invoice(customer, number, label))
        if invoice.customer != customer:
            raise LedgerError(f"{path}:{line.line}: column 'PieceRef': invoice {number} is on "
                              f"customer {customer} here and on customer {invoice.customer} on "
                              f"line {invoice.lines[0].line}")
        invoice.lines.append(line)
    return invoices


def _letter_reason(group: list[FecLine], entries: dict[Key, _Entry]) -> str:
    found = {entries[line.entry_key].reason for line in group if line.amount < 0}
    return LOSS if LOSS in found else DOUBTFUL if DOUBTFUL in found else LETTERED


def _letter(lines: list[FecLine], invoices: dict[str, _Invoice], entries: dict[Key, _Entry]) -> None:
    """Lettered invoice lines are settled; the others are open."""
    groups: dict[Key, list[FecLine]] = defaultdict(list)
    for line in lines:
        if line.letter:
            groups[(_customer(line), line.letter)].append(line)
    for invoice in invoices.values():
        for line in invoice.lines:
            if line.letter:
                invoice.reasons.append(_letter_reason(groups[(invoice.customer, line.letter)], entries))
            else:
                invoice.open += line.amount


def _named(line: FecLine, index: dict[str, list[_Invoice]]) -> list[_Invoice]:
    """The invoices a credit names: its PieceRef, or a word of PieceRef or EcritureLib."""
    words = {line.piece.casefold()}
    for text in (line.piece, line.label):
        for word in _WORD.findall(text):
            words.update((word.casefold(), word.strip("./-_").casefold()))
    found = {id(invoice): invoice for word in words for invoice in index.get(word, [])}
    return sorted(found.values(), key=lambda invoice: invoice.order)


def _take_back(pool: list[tuple[Decimal, str]], refunds: Decimal,
               customer: str) -> list[tuple[Decimal, str]]:
    """Refunds and rejected payments cancel unassigned credit, newest first."""
    kept: list[tuple[Decimal, str]] = []
    for amount, reason in reversed(pool):
        used = min(amount, refunds)
        refunds -= used
        if amount > used:
            kept.append((amount - used, reason))
    if refunds > 0:
        log.warning("customer %s: %s debited in payment entries with no credit to take back: "
                    "not an invoice, ignored", customer, refunds)
    return kept[::-1]


def _allocate(customer: str, invoices: list[_Invoice],
              credits: list[tuple[FecLine, Decimal, str]], refunds: Decimal) -> None:
    """Unlettered credits: to what they name, then to the oldest open invoices."""
    ordered = sorted(invoices, key=lambda invoice: invoice.order)
    index: dict[str, list[_Invoice]] = defaultdict(list)
    for invoice in ordered:
        index[invoice.number.casefold()].append(invoice)
    pool: list[tuple[Decimal, str]] = []
    for line, amount, reason in credits:
        for invoice in _named(line, index):
            amount = invoice.reduce(amount, reason)
        if amount > 0:
            pool.append((amount, reason))
    for amount, reason in _take_back(pool, refunds, customer):
        for invoice in ordered:
            amount = invoice.reduce(amount, reason)


def _settle(lines: list[FecLine], invoices: dict[str, _Invoice], entries: dict[Key, _Entry]) -> None:
    _letter(lines, invoices, entries)
    by_customer: dict[str, list[_Invoice]] = defaultdict(list)
    for invoice in invoices.values():
        by_customer[invoice.customer].append(invoice)
    credits: dict[str, list[tuple[FecLine, Decimal, str]]] = defaultdict(list)
    refunds: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for line in lines:
        if line.letter or not line.amount:
            continue
        entry = entries[line.entry_key]
        if line.amount < 0:
            credits[_customer(line)].append((line, -line.amount, entry.reason))
        elif entry.treasury:
            refunds[_customer(line)] += line.amount
    for customer in sorted(set(credits) | set(refunds)):
        _allocate(customer, by_customer[customer], credits[customer], refunds[customer])


def _reason(reasons: list[str]) -> str:
    for reason in (LOSS, DOUBTFUL):
        if reason in reasons:
            return reason
    if reasons and all(reason == CREDIT_NOTE for reason in reasons):
        return CREDIT_NOTE
    return LETTERED if LETTERED in reasons else PAID


def _customers(lines: list[FecLine]) -> dict[str, str]:
    names: dict[str, str] = {}
    for line in lines:
        name = line.aux_label if line.aux else line.account_label
        if not names.get(_customer(line)):
            names[_customer(line)] = name
    return names


def _fits(path: Path, invoice: _Invoice, name: str) -> None:
    """Refuse a code, name or number longer than its column, or holding a control character."""
    where = f"{path}:{invoice.lines[0].line}"
    for column, key, value in (("CompAuxNum", "customer_code", invoice.customer),
                                 ("CompAuxLib", "customer_name", name),
                                 ("PieceRef", "invoice_number", invoice.number)):
        if len(value) > (limit := INVOICE_LENGTHS[key]):
            raise LedgerError(f"{where}: {column}: {len(value):,} characters, more than the "
                              f"{limit} Relances keeps")
        if (control := control_in(value)) is not None:
            raise LedgerError(f"{where}: {column}: {control} in the value")


def _row(path: Path, invoice: _Invoice, name: str, terms: int) -> InvoiceRow:
    _fits(path, invoice, name)
    lines = invoice.lines
    due = max(line.due or line.date + dt.timedelta(days=terms) for line in lines)
    return InvoiceRow(
        customer_code=invoice.customer, customer_name=name or invoice.customer,
        affiliate_code=None, email=None, number=invoice.number,
        invoice_date=min(line.date for line in lines), due_date=due,
        total=sum((line.amount for line in lines), ZERO), remaining=max(invoice.open, ZERO),
        payment_method=None, settlement=None, assignment=None, representative=None, level=0,
        last_reminded_on=None, pdf_path=None, customer_kind=None,
        where=f"{path}:{lines[0].line}")


def fec_ledger(path: Path, *, customer_prefix: str = "411", payment_terms_days: int = 30) -> FecLedger:
    """Every invoice a FEC shows on the customer accounts, with what remains of it."""
    if not customer_prefix:
        raise ValueError("customer_prefix must not be empty")
    lines = read_fec(path)
    entries = _entries(lines)
    ours = [line for line in lines if line.account.startswith(customer_prefix)]
    invoices = _invoices(path, ours, entries)
    _settle(ours, invoices, entries)
    customers = _customers(ours)
    rows = [_row(path, invoice, customers[invoice.customer], payment_terms_days)
            for invoice in invoices.values()]
    settled = {invoice.number: _reason(invoice.reasons)
               for invoice in invoices.values() if invoice.open <= 0}
    labels = {invoice.number: invoice.label for invoice in invoices.values() if invoice.label}
    log.info("%s: %d lines, %d invoices on %d customers, %d settled", path, len(lines),
             len(rows), len(customers), len(settled))
    return FecLedger(rows, settled, labels, customers, len(lines))
