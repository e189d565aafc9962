"""What an e-invoicing platform's statuses do to the ledger (``relances import cdar``).

Each status is read once (``invoice_statuses``, by message, invoice and
code), in the order it was issued, and writes a history line:

- **212 Encaissée**, issued by the seller's own system (``SE``): the books
  hold the payment.  The invoice is settled as an export would settle it —
  a payment of what was cashed (the MEN amounts, else what remains),
  marked as already in the books — and not a second time when the bank
  already brought it: an invoice with nothing left only gets the history
  line, and a bank entry read later links to that payment instead of
  paying again.  A 212 from anyone else (the buyer, a platform) is left
  out and listed: only the seller knows what was cashed.
- **207 En litige, 208 Suspendue, 210 Refusée, 213 Rejetée** put the
  invoice on hold with that status and its reason.
- **211 Paiement transmis** keeps reminders back for
  ``imports.cdar.payment_sent_days`` (a hold with an end), unless a hold
  without end is already there.
- **205 Approuvée, 209 Complétée** end a hold a platform status put there;
  a hold a person set stays.
- Any other status is kept, for the record, and changes nothing.

A status for an invoice the ledger does not hold is listed, not kept: a
later import, once the invoice is known, applies it.  Statuses about
another seller's invoices (the SIREN in the message is not the one of
``sender.siret``) refuse the whole import.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from relances.daemon.config import Settings
from relances.daemon.errors import LedgerError
from relances.daemon.ledger.book import add_history, euros, record_payment
from relances.daemon.ledger.bulk import rows_in
from relances.daemon.ledger.cdar import Status
from relances.daemon.models import Invoice, InvoiceStatus

DISPUTES = frozenset({"207", "208", "210", "213"})
APPROVALS = frozenset({"205", "209"})
PLATFORM_HOLD = "Plateforme "  # how a hold set by a status starts its reason
SELLER_ROLES = frozenset({"SE", "SR"})  # the seller, or its representative


@dataclass
class CdarImport:
    statuses: int = 0
    applied: int = 0
    kept: int = 0  # read, changing nothing
    already: int = 0
    unknown: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (f"{self.statuses} statuses: {self.applied} applied, {self.kept} kept for the "
                f"record, {self.already} already read, {len(self.unknown)} for invoices not in "
                f"the ledger, {len(self.left_out)} left out")


def check_seller(settings: Settings, statuses: list[Status], source: str) -> None:
    """LedgerError when a status is about another seller's invoice."""
    ours = "".join(settings.sender.siret.split())[:9]
    if len(ours) != 9:
        return
    for status in statuses:
        if status.seller_siren and status.seller_siren != ours:
            raise LedgerError(
                f"{source}: line {status.line}: invoice {status.invoice_number} is of the seller "
                f"with SIREN {status.seller_siren}, not {ours} (sender.siret): not this ledger's")


async def _invoices(session: AsyncSession, numbers: list[str]) -> dict[str, Invoice]:
    rows = await rows_in(session, select(Invoice).with_for_update(), Invoice.number, numbers)
    return {invoice.number: invoice for (invoice,) in rows}


async def _read_before(session: AsyncSession, identities: list[str]) -> set[str]:
    rows = await rows_in(session, select(InvoiceStatus.identity), InvoiceStatus.identity,
                         identities)
    return {identity for (identity,) in rows}


async def apply_statuses(session: AsyncSession, settings: Settings,
                         files: list[tuple[str, list[Status]]], *, user: str) -> CdarImport:
    """Apply the statuses of CDAR files, in the caller's transaction."""
    result = CdarImport()
    everything = [(source, status) for source, statuses in files for status in statuses]
    for source, statuses in files:
        check_seller(settings, statuses, source)
    result.statuses = len(everything)
    invoices = await _invoices(session, sorted({s.invoice_number for _, s in everything}))
    read = await _read_before(session, sorted({s.identity for _, s in everything}))
    for source, status in sorted(everything, key=lambda item: item[1].issued_at):
        invoice = invoices.get(status.invoice_number)
        if invoice is None:
            result.unknown.append(status.invoice_number)
            continue
        if status.identity in read:
            result.already += 1
            continue
        read.add(status.identity)
        if status.code == "212" and status.issuer_role not in SELLER_ROLES:
            result.left_out.append(f"{status.invoice_number}: 212 Encaissée from the role "
                                   f"{status.issuer_role or '(none)'}, not the seller")
            continue
        session.add(InvoiceStatus(identity=status.identity, invoice_id=invoice.id, code=status.code,
                                  reason=status.reason, amount=status.amount,
                                  issued_at=status.issued_at, source=source[:300], read_by=user))
        change = await _apply(session, settings, invoice, status, user=user)
        if change:
            result.applied += 1
            result.changes.append(f"{invoice.number}: {change}")
        else:
            result.kept += 1
    await session.flush()
    return result


def _day(status: Status, zone: ZoneInfo) -> dt.date:
    return status.issued_at.astimezone(zone).date()


async def _apply(session: AsyncSession, settings: Settings, invoice: Invoice, status: Status, *,
                 user: str) -> str | None:
    """What the status did to the invoice, or None when it changes nothing."""
    said = f"{PLATFORM_HOLD}{status.label}" + (f" : {status.reason}" if status.reason else "")
    day = _day(status, settings.zone)
    if status.code == "212":
        return await _cashed(session, invoice, status, day, user=user)
    if status.code in DISPUTES:
        invoice.on_hold, invoice.hold_reason, invoice.hold_until = True, said[:200], None
        _history(session, invoice, user, "hold", f"Mise en attente : {said}")
        return f"on hold ({status.label})"
    if status.code == "211":
        if invoice.on_hold and invoice.hold_until is None:
            _history(session, invoice, user, "status", f"{said} (déjà en attente)")
            return None
        until = day + dt.timedelta(days=settings.imports.cdar.payment_sent_days)
        if invoice.on_hold and invoice.hold_until and invoice.hold_until >= until:
            until = invoice.hold_until
        invoice.on_hold, invoice.hold_reason, invoice.hold_until = True, said[:200], until
        _history(session, invoice, user, "hold", f"{said} : pas de relance jusqu'au {until:%d/%m/%Y}")
        return f"no reminder until {until:%d/%m/%Y} (211 Paiement transmis)"
    if status.code in APPROVALS and invoice.on_hold and \
            (invoice.hold_reason or "").startswith(PLATFORM_HOLD):
        invoice.on_hold, invoice.hold_reason, invoice.hold_until = False, None, None
        _history(session, invoice, user, "released", f"Fin de l'attente : {said}")
        return f"hold ended ({status.label})"
    return None


async def _cashed(session: AsyncSession, invoice: Invoice, status: Status, day: dt.date, *,
                  user: str) -> str:
    said = f"{PLATFORM_HOLD}{status.label}, message {status.message_id}"
    if invoice.remaining <= 0:
        _history(session, invoice, user, "status", f"{said} : déjà soldée, rien de plus")
        return "already settled: nothing more"
    amount = invoice.remaining if status.amount is None else min(status.amount, invoice.remaining)
    if amount <= 0:
        cashed = euros(status.amount or Decimal(0))
        _history(session, invoice, user, "status", f"{said} : montant encaissé {cashed}")
        return f"nothing cashed ({cashed})"
    await record_payment(session, invoice, amount=amount, paid_on=day, user=user,
                         method="plateforme", reference=f"CDAR {status.message_id}"[:100],
                         described=f"encaissement du {day:%d/%m/%Y} selon la plateforme (212, "
                                   f"message {status.message_id})", reflected=True)
    return f"settled by {euros(amount)} (212 Encaissée)"


def _history(session: AsyncSession, invoice: Invoice, user: str, event: str, action: str) -> None:
    add_history(session, user=user, event=event, invoice_id=invoice.id,
                customer_id=invoice.customer_id, action=action[:300])
