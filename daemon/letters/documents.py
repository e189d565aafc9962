"""Which document goes to whom: the letter job and its merge fields.

:func:`build_context` is the one place ORM rows become the plain dict a
template sees; :func:`prepare_letter` and :func:`prepare_statement` read
the rows, check the invoice copies (regular files inside the invoices
folder, links resolved: whatever path the import stored), and hand back a
picklable :class:`LetterJob` for the render pool.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from relances.daemon.config import Settings
from relances.daemon.errors import LedgerError, NothingToSend, RenderError
from relances.daemon.ledger.book import InvoiceCopies, invoice_copy_path
from relances.daemon.ledger.due import overdue_invoices
from relances.daemon.letters.context import build_context, customer_fields
from relances.daemon.letters.job import Kind, LetterJob
from relances.daemon.letters.options import attach_invoice
from relances.daemon.letters.templating import language_of
from relances.daemon.models import Customer, Invoice, Payment

log = logging.getLogger(__name__)

__all__ = ["LetterJob", "build_context", "customer_fields", "prepare_letter",
           "prepare_statement", "prepare_statement_for", "invoice_copy_path"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _copies(settings: Settings, invoices: Sequence[Invoice], level: int,
            attach: bool) -> tuple[str, ...]:
    if not attach:
        if level == 3:
            log.warning("level-3 reminder for %s without a copy of the invoice: in France "
                        "a formal notice should carry it (attach_invoice is off)",
                        ", ".join(i.number for i in invoices))
        return ()
    paths = []
    allowed = InvoiceCopies(settings)
    for invoice in invoices:
        path = invoice_copy_path(settings, invoice)
        refusal = allowed.refusal(path)
        if refusal is not None:
            raise RenderError(f"invoice {invoice.number}: the copy to attach is refused: "
                              f"{refusal}")
        if not path.is_file():
            raise RenderError(f"invoice {invoice.number}: the copy to attach is missing: {path}")
        paths.append(str(path))
    return tuple(paths)


def _file_name(language: str, kind: Kind, level: int, key: str, as_of: dt.date) -> str:
    safe = _UNSAFE.sub("_", key)
    if kind == "statement":
        word = "releve" if language == "fr" else "statement"
        return f"{word}-{safe}-{as_of.isoformat()}.pdf"
    word = "relance" if language == "fr" else "reminder"
    return f"{word}-{level}-{safe}.pdf"


def _plugin_fields(pm: Any, context: dict[str, Any], level: int, kind: Kind) -> dict[str, Any]:
    """The context plus the merge fields plugins add (they may not replace ours)."""
    from relances.plugins.manager import collect_letter_context

    merged = dict(collect_letter_context(pm, context=context, level=level, kind=kind))
    for key in merged.keys() - context.keys():
        _check_plain(merged[key], key)
    return merged


_PLAIN = (str, int, float, bool, Decimal, dt.date, type(None))


def _check_plain(value: Any, name: str) -> None:
    """Templates and worker processes only take plain data, never objects."""
    if isinstance(value, dict):
        for key, item in value.items():
            _check_plain(item, f"{name}.{key}")
    elif isinstance(value, list | tuple):
        for item in value:
            _check_plain(item, f"{name}[]")
    elif not isinstance(value, _PLAIN):
        raise RenderError(f"plugin merge field {name!r}: {type(value).__name__} "
                          "is not plain data (str, number, date, list, dict)")


async def _payments(session: AsyncSession,
                    invoices: Sequence[Invoice]) -> dict[int, list[tuple[dt.date, Decimal]]]:
    """Each invoice's payments (day, amount): a part payment during the delay lowers the
    balance that bears interest only from its day."""
    found: dict[int, list[tuple[dt.date, Decimal]]] = {}
    rows = await session.execute(select(Payment.invoice_id, Payment.paid_on, Payment.amount)
                                 .where(Payment.invoice_id.in_([i.id for i in invoices])))
    for invoice_id, paid_on, amount in rows:
        found.setdefault(invoice_id, []).append((paid_on, amount))
    return found


def _job(settings: Settings, customer: Customer, invoices: Sequence[Invoice], *,
         kind: Kind, level: int, as_of: dt.date, pm: Any, attach: bool,
         payments: dict[int, list[tuple[dt.date, Decimal]]] | None = None) -> LetterJob:
    language = language_of(settings, customer.language)
    copies = _copies(settings, invoices, level, attach)
    context = build_context(settings, customer, invoices, kind=kind, level=level,
                            as_of=as_of, language=language, payments=payments,
                            attach_invoice=attach)
    if pm is not None:
        context = _plugin_fields(pm, context, level, kind)
    key = invoices[0].number if kind == "letter" else customer.code
    return LetterJob(
        kind=kind, level=level, language=language,
        template=f"letter_{level}.html" if kind == "letter" else "statement.html",
        context=context,
        invoice_numbers=tuple(i.number for i in invoices),
        customer_code=customer.code,
        copy_paths=copies,
        subject=context["subject"],
        filename=_file_name(language, kind, level, key, as_of),
    )


async def prepare_letter(session: AsyncSession, settings: Settings, invoice_number: str, *,
                         level: int | None = None, as_of: dt.date, pm: Any = None) -> LetterJob:
    """The reminder letter for one invoice, at its current level or at ``level``."""
    row = (await session.execute(
        select(Invoice, Customer).join(Customer, Customer.id == Invoice.customer_id)
        .where(Invoice.number == invoice_number)
    )).first()
    if row is None:
        raise LedgerError(f"unknown invoice {invoice_number}")
    invoice, customer = row
    level = invoice.level if level is None else level
    if level == 0:
        raise RenderError(f"invoice {invoice_number} is at level 0: nothing to send")
    if level not in (1, 2, 3):
        raise RenderError(f"invoice {invoice_number}: no reminder level {level} (1 to 3)")
    return _job(settings, customer, [invoice], kind="letter", level=level, as_of=as_of, pm=pm,
                payments=await _payments(session, [invoice]),
                attach=await attach_invoice(session, settings, customer.policy, level))


async def prepare_statement(session: AsyncSession, settings: Settings, customer_code: str, *,
                            as_of: dt.date, pm: Any = None, level: int | None = None) -> LetterJob:
    """One statement for a customer: all their overdue unpaid invoices not in dispute.

    Written at the highest level among them, or at ``level`` when given.
    """
    customer = (await session.execute(
        select(Customer).where(Customer.code == customer_code)
    )).scalar_one_or_none()
    if customer is None:
        raise LedgerError(f"unknown customer {customer_code}")
    invoices = list(await overdue_invoices(session, customer.id, as_of))
    if not invoices:
        raise NothingToSend(f"customer {customer_code} has no overdue invoice: nothing to send")
    level = max(i.level for i in invoices) if level is None else level
    if level == 0:
        raise NothingToSend(f"customer {customer_code}: every overdue invoice is at level 0: "
                            "nothing to send")
    return _job(settings, customer, invoices, kind="statement", level=level, as_of=as_of,
                pm=pm, payments=await _payments(session, invoices),
                attach=await attach_invoice(session, settings, customer.policy, level))


async def prepare_statement_for(session: AsyncSession, settings: Settings, key: str, *,
                                as_of: dt.date, level: int | None = None) -> LetterJob:
    """A statement for a customer code, or for the customer of an invoice number."""
    code = (await session.execute(
        select(Customer.code).join(Invoice, Invoice.customer_id == Customer.id)
        .where(Invoice.number == key)
    )).scalar_one_or_none()
    if code is None:
        code = (await session.execute(
            select(Customer.code).where(Customer.code == key))).scalar_one_or_none()
    if code is None:
        raise LedgerError(f"{key} is neither an invoice number nor a customer code")
    return await prepare_statement(session, settings, code, as_of=as_of, level=level)
