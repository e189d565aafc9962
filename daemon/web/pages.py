"""The pages that show: the reminders table, a customer's card, an invoice.

Each reads through the functions the command line's ``list``,
``customer`` and ``invoice`` call (the ledger's ``book`` and ``listing``,
with ``screens`` for the filters, sorting and paging of the table).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from relances.daemon import formatting as fmt
from relances.daemon.dispatch.reprint import Sent, sent_for, sent_to
from relances.daemon.errors import LedgerError
from relances.daemon.ledger import book, screens
from relances.daemon.ledger.parsing import parse_amount
from relances.daemon.web.auth import NotFound, PageViewer, invoice_or_404, relances
from relances.daemon.web.rendering import Pages

router = APIRouter(include_in_schema=False)
HISTORY_SHOWN = 200  # steps on a customer's card; an invoice's page has all of its own

# The seed's columns, each with the sort key of its header link (None: not sortable).
COLUMNS = (("Code", "code"), ("Affilié", None), ("Nom", "nom"), ("email", None),
           ("Date Fac.", "date"), ("N° Fac.", "numero"), ("Affect.", None), ("Repr.", None),
           ("Total Fac.", "total"), ("Reste", "reste"), ("Échéance", "echeance"),
           ("Ech.", None), ("Rglmt.", None), ("Relancé le", "relance"), ("N", "niveau"))


def _pages(request: Request) -> Pages:
    pages: Pages = request.app.state.pages
    return pages


def table_filter(request: Request) -> tuple[screens.TableFilter, dict[str, str], list[str]]:
    """The filter a URL asks for, the parameters to keep in links, and what was not understood."""
    q = request.query_params
    params = {k: q.get(k, "").strip() for k in ("client", "niveau", "litige", "min", "max",
                                                  "tri", "ordre")}
    wrong: list[str] = []
    level = None
    if params["niveau"]:
        if params["niveau"] in ("0", "1", "2", "3"):
            level = int(params["niveau"])
        else:
            wrong.append("niveau")
            params["niveau"] = ""
    amounts: dict[str, Decimal | None] = {"min": None, "max": None}
    for key in amounts:
        if params[key]:
            try:
                amounts[key] = parse_amount(params[key])
            except ValueError:
                wrong.append("montant")
                params[key] = ""
    on_hold = {"oui": True, "non": False}.get(params["litige"])
    if on_hold is None:
        params["litige"] = ""
    return screens.TableFilter(customer=params["client"] or None, level=level, on_hold=on_hold,
                               min_remaining=amounts["min"],
                               max_remaining=amounts["max"]), params, wrong


def _page_number(request: Request) -> int:
    try:
        return max(1, int(request.query_params.get("page", "1")))
    except ValueError:
        return 1


@router.get("/relances")
async def reminders(request: Request, viewer: PageViewer) -> Response:
    app = relances(request)
    wanted, params, wrong = table_filter(request)
    sort = params["tri"] if params["tri"] in screens.SORTS else screens.DEFAULT_SORT
    descending = params["ordre"] == "desc"
    today = app.settings.today()
    async with app.sessions() as session:
        page = await screens.reminders_page(
            session, app.settings, as_of=today, wanted=wanted, sort=sort, descending=descending,
            page=_page_number(request), page_size=app.settings.web.page_size)
    for what in wrong:
        request.state.session.flash(f"Filtre ignoré : {what} illisible.", "error")
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return _pages(request).render(
        request, "relances.html", page=page, params=params, columns=COLUMNS, sort=sort,
        descending=descending, today=today, here=here, batch=request.app.state.batch)


def _history(app: Any, steps: list[book.Step],
             numbers: list[str | None] | None = None) -> list[dict[str, Any]]:
    """The lines of a history table; with ``numbers``, each line's invoice (a customer's)."""
    lines = []
    for index, step in enumerate(steps):
        day, time = fmt.local_time(step.at, app.settings.zone)
        lines.append({"date": day, "heure": time, "action": step.action, "user": step.user,
                      "reference": step.reference or "",
                      "facture": numbers[index] if numbers is not None else None})
    return lines


def document_lines(app: Any, sent: list[Sent]) -> list[dict[str, Any]]:
    """The lines of a table of the documents that left, each with its PDF's link."""
    lines = []
    for item in sent:
        day, time = fmt.local_time(item.sent_at, app.settings.zone)
        word = "Relevé" if item.kind == "statement" else "Relance"
        lines.append({"id": item.reminder_id, "date": day, "heure": time,
                      "document": f"{word} niveau {item.level}", "canal": item.channel,
                      "factures": ", ".join(item.invoice_numbers),
                      "taille": f"{max(1, round(item.size / 1024))} Ko"})
    return lines


@router.get("/clients/{code:path}")
async def customer_card(code: str, request: Request,
                        viewer: PageViewer) -> Response:
    app = relances(request)
    today = app.settings.today()
    async with app.sessions() as session:
        try:
            customer = await book.customer_by_code(session, code)
        except LedgerError:
            raise NotFound(f"Aucun client de code « {code} ».") from None
        invoices = await screens.open_invoices_of(session, customer)
        due = await book.amount_due(session, customer)
        notes = await book.notes_of(session, customer)
        timeline = await book.customer_timeline(session, customer, limit=HISTORY_SHOWN)
        sent = await sent_to(session, customer.id, limit=HISTORY_SHOWN)
    overdue = sum((i.remaining for i in invoices if i.due_date < today), Decimal(0))
    history = _history(app, [step for step, _ in timeline], [number for _, number in timeline])
    return _pages(request).render(
        request, "client.html", customer=customer, invoices=invoices, due=due, overdue=overdue,
        today=today, notes=[(fmt.local_time(n.at, app.settings.zone), n) for n in notes],
        history=history, history_shown=HISTORY_SHOWN, documents=document_lines(app, sent),
        here=request.url.path)


def invoice_copy(app: Any, invoice: Any) -> Path | None:
    """The invoice's own PDF, when there is one the letters could join (inside the
    invoices folder, links resolved)."""
    path = book.invoice_copy_path(app.settings, invoice)
    if book.InvoiceCopies(app.settings).refusal(path) is not None or not path.is_file():
        return None
    return path


@router.get("/copies/{number:path}")
async def invoice_copy_pdf(number: str, request: Request, viewer: PageViewer) -> Response:
    """The copy of the invoice, as a level that joins it would join it."""
    app = relances(request)
    async with app.sessions() as session:
        invoice = await invoice_or_404(session, number)
    path = invoice_copy(app, invoice)
    if path is None:
        raise NotFound(f"Aucune copie de la facture {number} dans le dossier des factures.")
    return FileResponse(path, media_type="application/pdf", content_disposition_type="inline",
                        filename=f"facture-{book.invoice_file_name(number)}.pdf")


@router.get("/factures/{number:path}")
async def invoice_detail(number: str, request: Request,
                         viewer: PageViewer) -> Response:
    app = relances(request)
    today = app.settings.today()
    async with app.sessions() as session:
        invoice = await invoice_or_404(session, number)
        customer = await book.customer_of(session, invoice)
        steps = await book.invoice_history(session, invoice.id)
        payments = await screens.payments_of(session, invoice)
        sent = await sent_for(session, invoice)
    overdue = (today - invoice.due_date).days
    on_hold = invoice.on_hold and (invoice.hold_until is None or invoice.hold_until >= today)
    return _pages(request).render(
        request, "facture.html", invoice=invoice, customer=customer, payments=payments,
        history=_history(app, steps), overdue=overdue, on_hold=on_hold, today=today,
        documents=document_lines(app, sent), copy=invoice_copy(app, invoice) is not None,
        here=request.url.path)
