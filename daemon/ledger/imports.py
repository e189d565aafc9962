"""Imports into the book: invoices, customers, payments and e-invoicing statuses from files.

Imports are all-or-nothing: the file is parsed and validated whole by
:mod:`relances.daemon.ledger.readers` before one row is written, and the
writes share the caller's transaction.  Re-importing a file changes
nothing; a newer export updates amounts and dates but never lowers a level
or erases a reminder date.
"""

from __future__ import annotations

import datetime as dt
import shutil
import socket
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from relances.daemon.config import Settings
from relances.daemon.errors import LedgerError
from relances.daemon.ledger.book import (
    InvoiceCopies,
    add_history,
    invoice_file_name,
    record_payment,
)
from relances.daemon.ledger.cdar import read_cdar
from relances.daemon.ledger.export import invoice_rows
from relances.daemon.ledger.kinds import KIND_LABELS, implied_kind
from relances.daemon.ledger.readers import customer_rows, payment_rows
from relances.daemon.ledger.reconcile import InvoiceImport, apply_invoices
from relances.daemon.ledger.statuses import CdarImport, apply_statuses
from relances.daemon.models import Customer, CustomerIban, Invoice, Payment, RunRecord, utcnow

CHUNK = 500


@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int
    unchanged: int
    customers: int

    def __str__(self) -> str:
        return (f"{self.created + self.updated + self.unchanged} rows: {self.created} new, "
                f"{self.updated} updated, {self.unchanged} unchanged; "
                f"{self.customers} customers")


def import_run(*, source: str | None, user: str, started: dt.datetime, summary: str,
               ok: bool = True) -> RunRecord:
    """The record of one import, ``import:SOURCE``, as ``relances status`` and the web
    screen's dashboard show the last of each source; the caller adds it to its session."""
    return RunRecord(job=f"import:{source or 'unknown'}", user=user, started_at=started,
                     finished_at=utcnow(), host=socket.gethostname(), summary=summary[:2000],
                     ok=ok)


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


async def import_invoices(session: AsyncSession, path: Path, *, settings: Settings | None = None,
                          user: str = "relances", complete: bool | None = None,
                          force: bool = False, trust_file: bool = False) -> InvoiceImport:
    """Validate a whole invoice file (the ERP's export), then apply it to the book.

    ``complete`` (default: the setting ``imports.invoices.complete``): the
    file lists every open invoice, and those it does not list are settled.
    """
    settings = settings or Settings()
    rows = invoice_rows(path, InvoiceCopies(settings))
    if complete is None:
        complete = settings.imports.invoices.complete
    return await apply_invoices(session, settings, rows, source=path.name, user=user,
                                complete=complete, force=force, trust_file=trust_file)


async def import_customers(session: AsyncSession, path: Path,
                           policies: Collection[str] | None = None, *,
                           settings: Settings | None = None,
                           user: str = "relances") -> ImportResult:
    """Validate a whole customer file, then upsert it by customer code.

    ``policies``: the policy names the settings define; a row naming
    another one is refused.  A new customer the file does not describe
    takes ``customers.default_kind``; a change of kind writes a history line.
    """
    settings = settings or Settings()
    rows = customer_rows(path)
    for row in rows:
        policy = row.values.get("policy")
        if policies is not None and policy and policy not in policies:
            known = ", ".join(sorted(policies))
            raise LedgerError(f"{row.where}: no policy named {policy!r} in the settings "
                              f"(known: {known})")
    existing: dict[str, Customer] = {}
    for chunk in _chunks(sorted({r.code for r in rows})):
        found = await session.execute(select(Customer).where(Customer.code.in_(chunk)))
        existing.update({c.code: c for c in found.scalars()})
    created = updated = unchanged = 0
    ibans: dict[str, tuple[str, ...]] = {}
    same: set[str] = set()
    for row in rows:
        if "ibans" in row.values:
            ibans[row.code] = row.values.pop("ibans")
        customer = existing.get(row.code)
        if customer is not None and (implied := implied_kind(row.values, customer.kind)):
            row.values["kind"] = implied
        if customer is None:
            if not row.values.get("name"):
                raise LedgerError(f"{path}: customer {row.code}: a new customer needs a name")
            values = {"kind": implied_kind(row.values, None) or settings.customers.default_kind,
                      **row.values}
            customer = existing[row.code] = Customer(code=row.code, **values)
            session.add(customer)
            created += 1
        elif all(getattr(customer, key) == value for key, value in row.values.items()):
            unchanged += 1
            same.add(row.code)
        else:
            if "kind" in row.values and row.values["kind"] != customer.kind:
                await session.flush()
                add_history(session, user=user, event="kind", customer_id=customer.id,
                            action=f"Nature du client modifiée : {KIND_LABELS[customer.kind]} → "
                                   f"{KIND_LABELS[row.values['kind']]} ({path.name})")
            for key, value in row.values.items():
                setattr(customer, key, value)
            updated += 1
    await session.flush()
    gained = await _add_ibans(session, existing, ibans) & same  # a new account is a change
    return ImportResult(created, updated + len(gained), unchanged - len(gained),
                        created + updated + unchanged)


async def _add_ibans(session: AsyncSession, customers: dict[str, Customer],
                     ibans: dict[str, tuple[str, ...]]) -> set[str]:
    """Remember the accounts a customers file gives; returns the codes that gained one."""
    gained: set[str] = set()
    for code, accounts in ibans.items():
        customer = customers[code]
        known = set((await session.execute(select(CustomerIban.iban).where(
            CustomerIban.customer_id == customer.id))).scalars())
        new = [iban for iban in accounts if iban not in known]
        session.add_all(CustomerIban(customer_id=customer.id, iban=iban, source="import")
                        for iban in new)
        if new:
            gained.add(code)
    await session.flush()
    return gained


async def import_payments(session: AsyncSession, path: Path, user: str) -> ImportResult:
    """Record a file's payments; importing the same file again records nothing new.

    Rows with a reference are recorded once per reference.  Identical rows
    without one (same invoice, day and amount) are counted: a file holding
    two of them records two payments, and importing it again none, because
    two are already there.
    """
    rows = payment_rows(path)
    created = unchanged = 0
    seen: dict[tuple[int, dt.date, Decimal], int] = {}
    for row in rows:
        invoice = await session.scalar(select(Invoice).where(Invoice.number == row.invoice_number))
        if invoice is None:
            raise LedgerError(f"{row.where}: column 'invoice_number': "
                              f"no invoice numbered {row.invoice_number!r}")
        if not row.reference:
            key = (invoice.id, row.paid_on, row.amount)
            seen[key] = seen.get(key, 0) + 1
            known = await session.scalar(select(func.count()).select_from(Payment).where(
                Payment.invoice_id == invoice.id, Payment.paid_on == row.paid_on,
                Payment.amount == row.amount, Payment.reference == ""))
            if (known or 0) >= seen[key]:
                unchanged += 1
                continue
        try:
            recorded = await record_payment(session, invoice, amount=row.amount,
                                            paid_on=row.paid_on, user=user, method=row.method,
                                            reference=row.reference)
        except LedgerError as exc:
            raise LedgerError(f"{row.where}: {exc}") from None
        created += recorded
        unchanged += not recorded
    return ImportResult(created, 0, unchanged, 0)


async def import_fec(session: AsyncSession, path: Path, *, settings: Settings | None = None,
                     user: str = "relances", force: bool = False,
                     trust_file: bool = False) -> InvoiceImport:
    """Read the FEC whole, then apply its open receivables to the book.

    A FEC describes the whole ledger: its import is complete by nature.
    """
    from relances.daemon.ledger.fec import fec_ledger

    settings = settings or Settings()
    fec = settings.imports.fec
    ledger = fec_ledger(path, customer_prefix=fec.customer_prefix,
                        payment_terms_days=fec.payment_terms_days)
    return await apply_invoices(
        session, settings, ledger.invoices, source=path.name, user=user, complete=True,
        force=force, trust_file=trust_file,
        settled_reasons={number: f"Soldée dans la comptabilité — {reason}"
                         for number, reason in ledger.settled.items()},
        absent_reason=f"Soldée dans la comptabilité — absente du FEC {path.name}",
        create_settled=False, labels=ledger.labels)


@dataclass
class FacturxImport:
    result: InvoiceImport
    imported: list[Path]
    refused: list[str]  # one line per refused file
    copies: list[tuple[Path, Path]]  # (the PDF, where its copy goes)


async def import_facturx(session: AsyncSession, paths: Sequence[Path], *,
                         settings: Settings | None = None, user: str = "relances",
                         partial: bool = False) -> FacturxImport:
    """Read Factur-X PDFs, then apply their invoices and buyers to the book.

    All or nothing, unless ``partial``: then the good files are imported and
    each refused one is reported.  The PDFs themselves are the invoices'
    copies: the caller copies each to its place in the invoices folder
    (``copies``) once the transaction is committed.
    """
    from relances.daemon.ledger.facturx import facturx_files, read_facturx

    settings = settings or Settings()
    read, refused = [], []
    for pdf in facturx_files(paths):
        try:
            read.append(read_facturx(pdf, payment_terms_days=settings.imports.facturx
                                     .payment_terms_days))
        except LedgerError as exc:
            if not partial:
                raise
            refused.append(str(exc))
    numbers: dict[str, Path] = {}
    for invoice in read:
        if invoice.row.number in numbers:
            raise LedgerError(f"{invoice.path}: invoice {invoice.row.number} is also in "
                              f"{numbers[invoice.row.number]}")
        numbers[invoice.row.number] = invoice.path
    copies = [(invoice.path, settings.path(settings.letters.invoice_pdf_pattern.format(
        number=invoice_file_name(invoice.row.number)))) for invoice in read]
    rows = [replace(i.row, customer_siren=i.customer.get("siren"),
                    customer_vat=i.customer.get("vat_number")) for i in read]
    result = await apply_invoices(
        session, settings, rows,
        source=", ".join(p.name for p in paths) if len(paths) < 4 else f"{len(read)} Factur-X",
        user=user, customer_details={i.row.customer_code: i.customer for i in read})
    return FacturxImport(result, [i.path for i in read], refused, copies)


def copy_invoice_pdfs(copies: Sequence[tuple[Path, Path]]) -> None:
    """Copy each e-invoice PDF to its place in the invoices folder."""
    for pdf, target in copies:
        target.parent.mkdir(parents=True, exist_ok=True)
        if pdf.resolve() == target.resolve():
            continue
        try:
            shutil.copyfile(pdf, target)
        except OSError as exc:
            raise LedgerError(f"{pdf}: cannot copy it to {target}: {exc.strerror}") from None


async def import_cdar(session: AsyncSession, paths: Sequence[Path], *, settings: Settings,
                      user: str) -> CdarImport:
    """Apply e-invoicing statuses (CDAR files): every file is read whole before one is applied."""
    files = [(path.name, read_cdar(path)) for path in paths]
    return await apply_statuses(session, settings, files, user=user)


async def import_any(session: AsyncSession, path: Path, source: str, *, settings: Settings,
                     user: str) -> str:
    """Import one file of ``source`` (see :mod:`relances.daemon.ledger.sources`) with the
    settings' defaults for that source; returns the summary line."""
    if source == "invoices":
        return str(await import_invoices(session, path, settings=settings, user=user))
    if source == "fec":
        return str(await import_fec(session, path, settings=settings, user=user))
    if source == "facturx":
        done = await import_facturx(session, [path], settings=settings, user=user)
        copy_invoice_pdfs(done.copies)
        return str(done.result)
    if source == "customers":
        customers = await import_customers(session, path, settings.policies, settings=settings,
                                           user=user)
        return (f"{customers.created} new customers, {customers.updated} updated, "
                f"{customers.unchanged} unchanged")
    if source == "cdar":
        return str(await import_cdar(session, [path], settings=settings, user=user))
    if source == "payments":
        payments = await import_payments(session, path, user)
        return f"{payments.created} payments recorded, {payments.unchanged} already known"
    raise LedgerError(f"{path}: no import for {source!r}")
