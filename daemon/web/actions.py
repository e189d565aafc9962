"""The forms that change the ledger: a level set by hand, a payment, a hold
and its release, a note.

Each handler checks the session's CSRF token and the role, calls the
ledger function the matching command calls (``set-level``, ``pay``,
``hold``, ``release``, ``note``) with the logged-in user's name for the
history, in one transaction, and sends the browser back where it was with
a message (post, redirect, get).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from relances.daemon import formatting as fmt
from relances.daemon.errors import LedgerError
from relances.daemon.ledger import book, promises
from relances.daemon.ledger.parsing import parse_amount, parse_date
from relances.daemon.web.auth import Viewer, changing_form, form_field, relances, session_of
from relances.daemon.web.guard import safe_return

router = APIRouter(include_in_schema=False)
NOTE_KINDS = ("call", "email", "letter", "visit", "note", "promise")


async def _act(request: Request, needed: str,
               body: Callable[[AsyncSession, Viewer, FormData], Awaitable[str]]) -> Response:
    """Check, run ``body`` in one transaction, flash what it says (or why it failed), go back."""
    viewer, form = await changing_form(request, needed)
    session = session_of(request)
    try:
        async with relances(request).sessions.begin() as db:
            session.flash(await body(db, viewer, form))
    except (LedgerError, ValueError) as exc:
        session.flash(str(exc), "error")
    return RedirectResponse(safe_return(form_field(form, "retour")), status_code=303)


def _limited(form: FormData, name: str, limit: int, label: str) -> str:
    """A text field, refused rather than cut when it is longer than the ledger keeps."""
    text = form_field(form, name)
    if len(text) > limit:
        raise ValueError(f"« {label} » : {limit} caractères au plus ({len(text)} saisis).")
    return text


def _date_field(form: FormData, name: str, default: dt.date | None) -> dt.date | None:
    text = form_field(form, name)
    return parse_date(text) if text else default


@router.post("/actions/niveau")
async def set_level(request: Request) -> Response:
    async def body(db: AsyncSession, viewer: Viewer, form: FormData) -> str:
        number, text = form_field(form, "numero"), form_field(form, "niveau")
        if text not in ("0", "1", "2", "3"):
            raise ValueError(f"{number} : un niveau est 0, 1, 2 ou 3.")
        invoice = await book.invoice_by_number(db, number)
        previous = await book.set_level(db, invoice, int(text), user=viewer.name)
        return (f"{number} : déjà au niveau {text}." if previous == int(text)
                else f"{number} : niveau {previous} → {text}.")

    return await _act(request, "gestion", body)


@router.post("/actions/reglement")
async def record_payment(request: Request) -> Response:
    async def body(db: AsyncSession, viewer: Viewer, form: FormData) -> str:
        number = form_field(form, "numero")
        invoice = await book.invoice_by_number(db, number)
        text = form_field(form, "montant")
        if not text:
            raise ValueError(f"{number} : indiquez le montant du règlement.")
        amount = parse_amount(text)
        today = relances(request).settings.today()
        paid_on = _date_field(form, "date", None) or today
        if paid_on > today:
            raise ValueError(f"{number} : un règlement reçu le {fmt.date(paid_on)} serait dans "
                             "le futur.")
        reference = _limited(form, "reference", 100, "Réf.")
        recorded = await book.record_payment(
            db, invoice, amount=amount, paid_on=paid_on, user=viewer.name,
            method=_limited(form, "mode", 64, "Mode") or None, reference=reference)
        if not recorded:
            raise LedgerError(f"{number} : un règlement de référence « {reference} » "
                              "est déjà enregistré.")
        left = invoice.remaining
        return (f"{number} : règlement de {book.euros(amount)} enregistré, "
                + ("facture soldée." if left == 0 else f"reste {book.euros(left)}."))

    return await _act(request, "gestion", body)


@router.post("/actions/litige")
async def hold(request: Request) -> Response:
    async def body(db: AsyncSession, viewer: Viewer, form: FormData) -> str:
        number, reason = form_field(form, "numero"), _limited(form, "motif", 180, "Motif")
        if not reason:
            raise ValueError(f"{number} : indiquez le motif du litige.")
        invoice = await book.invoice_by_number(db, number)
        until = _date_field(form, "jusqu_au", None)
        if invoice.remaining <= 0:
            raise ValueError(f"{number} : la facture est réglée, rien à mettre en litige.")
        if until is not None and until < relances(request).settings.today():
            raise ValueError(f"{number} : un litige jusqu'au {fmt.date(until)} serait déjà fini.")
        await book.set_hold(db, invoice, user=viewer.name, reason=reason, until=until)
        return f"{number} : mis en litige ({reason})."

    return await _act(request, "gestion", body)


@router.post("/actions/fin-litige")
async def release(request: Request) -> Response:
    async def body(db: AsyncSession, viewer: Viewer, form: FormData) -> str:
        number = form_field(form, "numero")
        invoice = await book.invoice_by_number(db, number)
        if not invoice.on_hold:
            raise ValueError(f"{number} : la facture n'est pas en litige.")
        await book.release_hold(db, invoice, user=viewer.name)
        return f"{number} : litige levé."

    return await _act(request, "gestion", body)


@router.post("/actions/note")
async def add_note(request: Request) -> Response:
    async def body(db: AsyncSession, viewer: Viewer, form: FormData) -> str:
        code, kind = form_field(form, "client"), form_field(form, "type") or "note"
        if kind not in NOTE_KINDS:
            raise ValueError(f"type de note inconnu : {kind}")
        customer = await book.customer_by_code(db, code)
        text = _limited(form, "texte", 4000, "Échange")
        if kind == "promise" or form_field(form, "promesse_le"):
            on = _date_field(form, "promesse_le", None)
            if on is None:
                raise ValueError(f"{code} : indiquez la date du règlement promis.")
            settings = relances(request).settings
            await promises.record_promise(
                db, customer, user=viewer.name, on=on, text=text, as_of=settings.today(),
                grace_days=settings.customers.promise_grace_days)
            assert customer.promise_until is not None
            return (f"{code} : promesse de règlement pour le {fmt.date(on)} enregistrée, "
                    f"relances suspendues jusqu'au {fmt.date(customer.promise_until)}.")
        await book.add_note(db, customer, user=viewer.name, text=text, kind=kind)
        return f"{code} : note enregistrée."

    return await _act(request, "gestion", body)
