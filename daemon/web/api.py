"""The JSON API under ``/api/``, for programs (an ERP pushing payments, a
report reading the table); its description is ``/api/openapi.json``.

A program authenticates with a bearer token (``relances user token``);
the token's role is checked as a person's would be, and its name, as
``api:NAME``, goes into the history.  Amounts are strings with a dot,
dates ISO 8601.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, model_validator
from starlette.requests import Request

from relances.daemon.config import MAX_AMOUNT
from relances.daemon.errors import LedgerError
from relances.daemon.ledger import book, promises, screens
from relances.daemon.ledger.cells import CONTROL, INVOICE_LENGTHS
from relances.daemon.ledger.imports import import_run
from relances.daemon.ledger.readers import InvoiceRow, parse_emails
from relances.daemon.ledger.reconcile import apply_invoices
from relances.daemon.models import Customer, Invoice, utcnow
from relances.daemon.web.auth import LoginRequired, Viewer, api_viewer, page_viewer, relances

router = APIRouter(prefix="/api", tags=["relances"])


def reader(viewer: Annotated[Viewer, Depends(api_viewer)]) -> Viewer:
    viewer.require("lecture")
    return viewer


def manager(viewer: Annotated[Viewer, Depends(api_viewer)]) -> Viewer:
    viewer.require("gestion")
    return viewer


Reader = Annotated[Viewer, Depends(reader)]
Manager = Annotated[Viewer, Depends(manager)]


class PaymentIn(BaseModel):
    invoice: str = Field(description="The invoice number.")
    amount: Decimal | None = Field(None, gt=0, description="Euros; absent: all that remains.")
    paid_on: dt.date | None = Field(None, description="Absent: today.")
    method: str | None = Field(None, max_length=64)
    reference: str = Field("", max_length=100,
                           description="Cheque number, transfer id: a payment with a "
                                       "reference is recorded once.")


class HoldIn(BaseModel):
    invoice: str
    reason: str = Field(min_length=1, max_length=180)
    until: dt.date | None = None


class NoteIn(BaseModel):
    customer: str = Field(description="The customer's code.")
    text: str = Field("", max_length=4000)
    kind: Literal["call", "email", "letter", "visit", "note", "promise"] = "note"
    promised_on: dt.date | None = Field(
        None, description="For a promise to pay: the day promised; reminders wait until "
                          "then and customers.promise_grace_days.")


MAX_PUSHED = 10_000  # invoices in one request; more: several requests, or the export file
_LENGTHS = INVOICE_LENGTHS


def _text(value: str | None, field: str, required: bool = False) -> str | None:
    """A text of the books: within its column's length, without control characters."""
    if value is None or not value.strip():
        if required:
            raise ValueError(f"{field}: required")
        return None
    value = value.strip()
    if CONTROL.search(value):
        raise ValueError(f"{field}: a control character")
    if len(value) > _LENGTHS[field]:
        raise ValueError(f"{field}: longer than {_LENGTHS[field]} characters")
    return value


class InvoiceIn(BaseModel):
    number: str
    customer_code: str
    customer_name: str
    email: str | None = None
    invoice_date: dt.date
    due_date: dt.date
    total: Decimal = Field(ge=0, le=MAX_AMOUNT, decimal_places=2)
    remaining: Decimal = Field(ge=0, le=MAX_AMOUNT, decimal_places=2)
    payment_method: str | None = None
    level: int = Field(0, ge=0, le=3, description="Only for an invoice Relances never reminded.")

    @model_validator(mode="after")
    def _checked(self) -> InvoiceIn:
        for name, field in (("number", "invoice_number"), ("customer_code", "customer_code"),
                            ("customer_name", "customer_name")):
            setattr(self, name, _text(getattr(self, name), field, required=True))
        self.payment_method = _text(self.payment_method, "payment_method")
        email = _text(self.email, "email")
        self.email = parse_emails(email) if email else None
        if self.remaining > self.total:
            raise ValueError(f"remaining {self.remaining} is more than the total {self.total}")
        return self


class InvoicesIn(BaseModel):
    invoices: list[InvoiceIn] = Field(min_length=1, max_length=MAX_PUSHED)
    complete: bool = Field(False, description="The list is every open invoice: settle the "
                                              "others (imports.complete_guard applies).")


def _money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"


def _invoice(invoice: Invoice) -> dict[str, Any]:
    return {
        "number": invoice.number, "label": invoice.label,
        "invoice_date": invoice.invoice_date.isoformat(), "due_date": invoice.due_date.isoformat(),
        "total": _money(invoice.total), "remaining": _money(invoice.remaining),
        "payment_method": invoice.payment_method, "settlement": invoice.settlement,
        "level": invoice.level, "last_reminded_on": invoice.last_reminded_on.isoformat()
        if invoice.last_reminded_on else None,
        "on_hold": invoice.on_hold, "hold_reason": invoice.hold_reason,
        "hold_until": invoice.hold_until.isoformat() if invoice.hold_until else None,
    }


def _customer(customer: Customer) -> dict[str, Any]:
    return {"code": customer.code, "name": customer.name, "affiliate_code": customer.affiliate_code,
            "email": customer.email, "phone": customer.phone, "fax": customer.fax,
            "address": list(customer.address), "kind": customer.kind,
            "language": customer.language, "policy": customer.policy,
            "opted_out": customer.opted_out, "credit": _money(customer.credit)}


async def _invoice_by_number(db: Any, number: str) -> Invoice:
    try:
        return await book.invoice_by_number(db, number)
    except LedgerError as exc:
        raise HTTPException(404, str(exc)) from None


@router.get("/reminders", summary="The reminders table: overdue unpaid invoices")
async def reminders(
    request: Request, viewer: Reader,
    customer: str | None = Query(None, description="A customer's code or part of a name."),
    level: int | None = Query(None, ge=0, le=3), on_hold: bool | None = None,
    min_remaining: Decimal | None = None, max_remaining: Decimal | None = None,
    sort: str = Query(screens.DEFAULT_SORT, pattern="^(" + "|".join(screens.SORTS) + ")$"),
    descending: bool = False, page: int = Query(1, ge=1), page_size: int = Query(100, ge=1, le=1000),
) -> dict[str, Any]:
    app = relances(request)
    wanted = screens.TableFilter(customer=customer, level=level, on_hold=on_hold,
                                 min_remaining=min_remaining, max_remaining=max_remaining)
    async with app.sessions() as db:
        found = await screens.reminders_page(db, app.settings, as_of=app.settings.today(),
                                             wanted=wanted, sort=sort, descending=descending,
                                             page=page, page_size=page_size)
    return {"count": found.count, "total": _money(found.total),
            "remaining": _money(found.remaining), "page": found.page, "pages": found.pages,
            "rows": [{**row.as_json(), "settlement": row.settlement} for row in found.rows]}


@router.get("/invoices", summary="Open invoices of a customer, due or not yet due")
async def invoices(request: Request, customer: str, viewer: Reader) -> list[Any]:
    async with relances(request).sessions() as db:
        try:
            found = await book.customer_by_code(db, customer)
        except LedgerError as exc:
            raise HTTPException(404, str(exc)) from None
        return [_invoice(i) for i in await screens.open_invoices_of(db, found)]


@router.get("/invoices/{number:path}", summary="One invoice, its payments and history")
async def invoice(number: str, request: Request, viewer: Reader) -> dict[str, Any]:
    async with relances(request).sessions() as db:
        found = await _invoice_by_number(db, number)
        customer = await book.customer_of(db, found)
        payments = await screens.payments_of(db, found)
        steps = await book.invoice_history(db, found.id)
    return {**_invoice(found), "customer": customer.code,
            "payments": [{"paid_on": p.paid_on.isoformat(), "amount": _money(p.amount),
                          "method": p.method, "reference": p.reference,
                          "recorded_by": p.recorded_by} for p in payments],
            "history": [{"at": s.at.isoformat(), "user": s.user, "action": s.action,
                         "event": s.event, "level": s.level, "channel": s.channel}
                        for s in steps]}


@router.get("/customers/{code:path}", summary="A customer's card: contacts, balance, open invoices")
async def customer(code: str, request: Request, viewer: Reader) -> dict[str, Any]:
    async with relances(request).sessions() as db:
        try:
            found = await book.customer_by_code(db, code)
        except LedgerError as exc:
            raise HTTPException(404, str(exc)) from None
        due = await book.amount_due(db, found)
        open_ = await screens.open_invoices_of(db, found)
    return {**_customer(found), "due": _money(due), "invoices": [_invoice(i) for i in open_]}


@router.post("/invoices", summary="Push the books' open invoices, as an export file would")
async def push_invoices(body: InvoicesIn, request: Request, viewer: Manager) -> dict[str, Any]:
    """The same rules as ``relances import invoices``: all or nothing, a payment recorded
    here is never undone, levels and "Relancé le" only for invoices never reminded here."""
    seen: dict[str, int] = {}
    for index, item in enumerate(body.invoices):
        if item.number in seen:
            raise HTTPException(422, f"invoices[{index}]: invoice {item.number} already "
                                     f"appears at invoices[{seen[item.number]}]")
        seen[item.number] = index
    rows = [InvoiceRow(
        customer_code=i.customer_code, customer_name=i.customer_name, affiliate_code=None,
        email=i.email, number=i.number, invoice_date=i.invoice_date, due_date=i.due_date,
        total=i.total, remaining=i.remaining, payment_method=i.payment_method, settlement=None,
        assignment=None, representative=None, level=i.level, last_reminded_on=None,
        pdf_path=None, where=f"invoices[{n}]") for n, i in enumerate(body.invoices)]
    app = relances(request)
    try:
        async with app.sessions.begin() as db:
            started = utcnow()
            result = await apply_invoices(db, app.settings, rows, source=f"api:{viewer.name}",
                                          user=viewer.name, complete=body.complete)
            # The last import of the books, as the dashboard and `relances status` show it.
            db.add(import_run(source="invoices", user=viewer.name, started=started,
                              summary=f"API: {result}"))
    except LedgerError as exc:
        raise HTTPException(422, str(exc)) from None
    return {"created": result.created, "updated": result.updated,
            "unchanged": result.unchanged, "settled": result.settled,
            "kept_lower": result.stale, "summary": str(result)}


@router.post("/payments", status_code=201, summary="Record a payment on an invoice")
async def record_payment(body: PaymentIn, request: Request,
                         viewer: Manager) -> dict[str, Any]:
    app = relances(request)
    async with app.sessions.begin() as db:
        found = await _invoice_by_number(db, body.invoice)
        amount = body.amount if body.amount is not None else found.remaining
        try:
            recorded = await book.record_payment(
                db, found, amount=amount, paid_on=body.paid_on or app.settings.today(),
                user=viewer.name, method=body.method, reference=body.reference)
        except LedgerError as exc:
            raise HTTPException(422, str(exc)) from None
        if not recorded:
            raise HTTPException(409, f"{body.invoice}: a payment with reference "
                                     f"{body.reference!r} is already recorded")
        return {"invoice": found.number, "amount": _money(amount),
                "remaining": _money(found.remaining)}


@router.post("/holds", status_code=201, summary="Put an invoice in dispute (no reminders)")
async def hold(body: HoldIn, request: Request, viewer: Manager) -> dict[str, Any]:
    async with relances(request).sessions.begin() as db:
        found = await _invoice_by_number(db, body.invoice)
        await book.set_hold(db, found, user=viewer.name, reason=body.reason, until=body.until)
        return _invoice(found)


@router.delete("/holds/{number:path}", summary="End the dispute on an invoice")
async def release(number: str, request: Request, viewer: Manager) -> dict[str, Any]:
    async with relances(request).sessions.begin() as db:
        found = await _invoice_by_number(db, number)
        await book.release_hold(db, found, user=viewer.name)
        return _invoice(found)


@router.post("/notes", status_code=201,
             summary="Note an exchange with a customer, or a promise to pay")
async def note(body: NoteIn, request: Request, viewer: Manager) -> dict[str, Any]:
    app = relances(request)
    async with app.sessions.begin() as db:
        try:
            found = await book.customer_by_code(db, body.customer)
        except LedgerError as exc:
            raise HTTPException(404, str(exc)) from None
        try:
            if body.kind == "promise" or body.promised_on is not None:
                if body.promised_on is None:
                    raise LedgerError(f"{found.code}: a promise to pay needs promised_on")
                written = await promises.record_promise(
                    db, found, user=viewer.name, on=body.promised_on, text=body.text,
                    grace_days=app.settings.customers.promise_grace_days,
                    as_of=app.settings.today())
            else:
                written = await book.add_note(db, found, user=viewer.name, text=body.text,
                                              kind=body.kind)
        except LedgerError as exc:
            raise HTTPException(422, str(exc)) from None
        return {"customer": found.code, "kind": written.kind, "text": written.text,
                "reminders_wait_until": (found.promise_until.isoformat()
                                         if found.promise_until else None)}


@router.get("/openapi.json", include_in_schema=False)
async def openapi(request: Request) -> JSONResponse:
    """The API's description, for a token holder or a logged-in person."""
    try:
        await api_viewer(request)
    except LoginRequired:
        await page_viewer(request)
    return JSONResponse(request.app.openapi())
