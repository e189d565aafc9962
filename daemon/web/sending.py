"""What leaves from the screen: a row's letter or statement with its preview
first, a reprint, the exact PDF that left, the escalation with its dry run,
and sending the selected rows or all that is due.

Each handler calls what the command line's ``preview``, ``send``,
``reprint`` and ``escalate`` call (the letters' ``prepare_letter``, the
outbox's ``queue``, the :class:`Dispatcher`, ``reprint``, ``escalate``),
acting in the history for the logged-in person.  One letter is sent while
the browser waits, so the page says what became of it; a batch goes on in
the server after the answer, and the reminders table shows how far it got.
The render workers start at the first letter, not with the server.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter
from sqlalchemy import func, select
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from relances.daemon import formatting as fmt
from relances.daemon.dispatch import outbox
from relances.daemon.dispatch.reprint import document_of, reprint, sent_for
from relances.daemon.dispatch.run import Dispatcher, Summary, record_run
from relances.daemon.errors import LedgerError, RelancesError
from relances.daemon.escalation.run import escalate
from relances.daemon.ledger import book
from relances.daemon.ledger.due import contact_window
from relances.daemon.letters.documents import prepare_letter, prepare_statement_for
from relances.daemon.letters.pool import Renderer
from relances.daemon.models import Reminder, utcnow
from relances.daemon.storage import App
from relances.daemon.web.auth import (
    NotFound,
    PageViewer,
    changing_form,
    form_field,
    invoice_or_404,
    relances,
    session_of,
)
from relances.daemon.web.guard import safe_return
from relances.daemon.web.pages import document_lines
from relances.daemon.web.rendering import Pages

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
SHOWN = 200  # changes listed by an escalation's dry run


def renderer_of(request: Request) -> Renderer:
    """The server's render workers, started at the first letter."""
    state = request.app.state
    if state.renderer is None:
        state.renderer = Renderer(relances(request).settings)
    renderer: Renderer = state.renderer
    return renderer


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count > 1 else ''}"


def summary_fr(summary: Summary) -> str:
    """What a dispatch did, in the screen's words."""
    def by_channel(counts: Any) -> str:
        return ", ".join(f"{name} : {n}" for name, n in sorted(counts.items()))

    parts = []
    sent = sum(summary.sent.values())
    parts.append(_plural(sent, "envoyée") + (f" ({by_channel(summary.sent)})" if sent else ""))
    awaiting = sum(summary.awaiting.values())
    if awaiting:
        parts.append(f"{_plural(awaiting, 'remise')} à l'imprimante ou au fax "
                     f"({by_channel(summary.awaiting)}), en attente de confirmation")
    if summary.failed:
        parts.append(f"{summary.failed} en échec")
    if summary.retrying:
        parts.append(f"{summary.retrying} à réessayer plus tard")
    if summary.cancelled:
        parts.append(f"{_plural(summary.cancelled, 'annulée')} (réglée ou en litige entre-temps)")
    if summary.lost:
        parts.append(f"{summary.lost} prise(s) en charge par un autre envoi")
    return ", ".join(parts)


async def _dispatch(app: App, renderer: Renderer, ids: list[int], job: str,
                    progress: Any = None) -> Summary:
    """Send ``ids`` once each (a transient failure waits for the daemon or the next send)."""
    dispatcher = Dispatcher(app, app.plugins, renderer, progress=progress)
    started = utcnow()
    summary = await dispatcher.run_until(ids, started)
    await record_run(app, job, started, len(ids), summary)
    return summary


def held_back(settings: Any, customer: Any, invoice: Any, today: dt.date) -> str | None:
    """Why no reminder may go to ``invoice`` today, in the screen's words (the ledger's
    :func:`not_remindable`, said in French), or None."""
    if customer.opted_out:
        return "le client a demandé à ne plus être relancé"
    if customer.review_until is not None and customer.review_until >= today:
        return (f"un virement qui peut être le sien attend d'être rapproché (relances "
                f"suspendues jusqu'au {fmt.date(customer.review_until)})")
    if customer.paused_until is not None and customer.paused_until >= today:
        return (f"le client a répondu : relances suspendues jusqu'au "
                f"{fmt.date(customer.paused_until)}")
    if customer.promise_until is not None and customer.promise_until >= today:
        return (f"le client a promis de régler le {fmt.date(customer.promised_on)} : relances "
                f"suspendues jusqu'au {fmt.date(customer.promise_until)}")
    if invoice.remaining <= 0:
        return "la facture est réglée"
    least = settings.policy(customer.policy).minimum_amount
    if invoice.remaining < least:
        return f"le reste dû est sous le minimum de la politique ({book.euros(least)})"
    if invoice.on_hold and (invoice.hold_until is None or invoice.hold_until >= today):
        return "la facture est en litige"
    if invoice.due_date >= today:
        return f"la facture n'est échue que le {fmt.date(invoice.due_date)}"
    return None


async def contact_wait(db: Any, settings: Any, customer: Any, today: dt.date) -> str | None:
    """Why the customer's next reminder waits for ``customers.min_contact_days``, or None."""
    days = settings.customers.min_contact_days
    if days <= 1:
        return None
    since, until = contact_window(settings, today)
    last = await db.scalar(select(func.max(Reminder.sent_at)).where(
        Reminder.customer_id == customer.id, Reminder.sent_at >= since, Reminder.sent_at < until))
    if last is None:
        return None
    if last.tzinfo is None:
        last = last.replace(tzinfo=dt.UTC)  # SQLite hands back naive UTC
    day = last.astimezone(settings.zone).date()
    return (f"le client a reçu une relance le {fmt.date(day)} : la suivante attend le "
            f"{fmt.date(day + dt.timedelta(days=days))} (cochez « envoyer à nouveau » "
            "pour l'envoyer quand même)")


def _request(app: App, form: FormData, **kwargs: Any) -> outbox.Request:
    channel = form_field(form, "canal") or None
    if channel and channel not in app.settings.channels:
        raise LedgerError(f"le canal « {channel} » n'est pas configuré")
    return outbox.Request(channel=channel, force=form_field(form, "forcer") == "1", **kwargs)


@router.get("/envoi/{number:path}")
async def send_page(number: str, request: Request, viewer: PageViewer) -> Response:
    viewer.require("envoi")
    app = relances(request)
    async with app.sessions() as session:
        invoice = await invoice_or_404(session, number)
        customer = await book.customer_of(session, invoice)
        sent = await sent_for(session, invoice)
        why = held_back(app.settings, customer, invoice, app.settings.today()) or (
            await contact_wait(session, app.settings, customer, app.settings.today()))
    policy = app.settings.policy(customer.policy)
    level = max(invoice.level, 1)
    rules = policy.level(level)
    pages: Pages = request.app.state.pages
    return pages.render(
        request, "envoi.html", invoice=invoice, customer=customer, level=level,
        channels=list(app.settings.channels), level_channels=rules.channels,
        statement=rules.document == "statement", sent=document_lines(app, sent), why=why,
        here=request.url.path)


@router.get("/apercu/{number:path}")
async def preview(number: str, request: Request, viewer: PageViewer) -> Response:
    """The letter (or statement) as it would leave today; sends and stamps nothing."""
    app = relances(request)
    q = request.query_params
    level = int(q["niveau"]) if q.get("niveau", "") in ("1", "2", "3") else None
    as_of = app.settings.today()
    try:
        async with app.sessions() as session:
            invoice = await book.invoice_by_number(session, number)
            if q.get("releve") == "1":
                job = await prepare_statement_for(session, app.settings, number, as_of=as_of,
                                                  level=level)
            else:
                job = await prepare_letter(session, app.settings, number, as_of=as_of,
                                           level=level or max(invoice.level, 1))
        rendered = await renderer_of(request).render(job)
    except RelancesError as exc:
        session_of(request).flash(str(exc), "error")
        return RedirectResponse(f"/envoi/{quote(number, safe='')}", status_code=303)
    return Response(rendered.pdf, media_type="application/pdf", headers={
        "Content-Disposition": f'inline; filename="apercu-{job.filename}"'})


@router.get("/documents/{reminder_id:int}")
async def sent_document(reminder_id: int, request: Request, viewer: PageViewer) -> Response:
    """The exact PDF that left with a reminder."""
    async with relances(request).sessions() as session:
        found = await document_of(session, reminder_id)
    if found is None:
        raise NotFound("Aucun document envoyé sous ce numéro.")
    sent, content = found
    word = "releve" if sent.kind == "statement" else "relance"
    name = f"{word}-{sent.level}-{sent.invoice_numbers[0] if sent.invoice_numbers else sent.reminder_id}"
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
    return Response(content, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{safe}.pdf"'})


@router.post("/actions/envoi")
async def send_one(request: Request) -> Response:
    viewer, form = await changing_form(request, "envoi")
    app = relances(request).as_user(viewer.name)
    session = session_of(request)
    number = form_field(form, "numero")
    statement = form_field(form, "document") == "releve"
    try:
        async with app.sessions.begin() as db:
            invoice = await book.invoice_by_number(db, number)
            if invoice.level == 0:
                raise LedgerError(f"{number} est au niveau 0 : rien à envoyer "
                                  "(incrémentez d'abord le niveau).")
            customer = await book.customer_of(db, invoice)
            wanted = (_request(app, form, customer=customer.code, statement=True) if statement
                      else _request(app, form, invoice=number))
            queued = await outbox.queue(db, app.settings, wanted, user=viewer.name)
            waiting = await outbox.waiting_for(db, wanted)
            why = held_back(app.settings, customer, invoice, app.settings.today()) or (
                await contact_wait(db, app.settings, customer, app.settings.today()))
        ids = sorted(set(queued.ids) | set(waiting))
        if not ids:
            session.flash(f"{number} : rien à envoyer, " + (
                why or "la relance de ce niveau est déjà envoyée ou en file (cochez « envoyer "
                       "à nouveau »)") + ".", "error")
        else:
            await send_now(request, app, ids, number)
    except (LedgerError, ValueError) as exc:
        session.flash(str(exc), "error")
    return RedirectResponse(safe_return(form_field(form, "retour")), status_code=303)


@router.post("/actions/reimpression")
async def reprint_one(request: Request) -> Response:
    viewer, form = await changing_form(request, "envoi")
    app = relances(request).as_user(viewer.name)
    number, channel = form_field(form, "numero"), form_field(form, "canal") or None
    try:
        if channel and channel not in app.settings.channels:
            raise LedgerError(f"le canal « {channel} » n'est pas configuré")
        receipt = await reprint(app, number, channel=channel)
        session_of(request).flash(f"{number} : duplicata envoyé par {receipt.channel} "
                                  f"({receipt.reference}).")
    except RelancesError as exc:
        session_of(request).flash(f"{number} : {exc}", "error")
    return RedirectResponse(safe_return(form_field(form, "retour")), status_code=303)


@dataclass
class Batch:
    """A batch sent from the screen, going on after the answer."""

    user: str
    started: dt.datetime
    total: int
    done: int = 0
    result: str | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        return self.result is None

    def advance(self, count: int) -> None:
        self.done += count


async def _run_batch(batch: Batch, app: App, renderer: Renderer, ids: list[int]) -> None:
    try:
        summary = await _dispatch(app, renderer, ids, "send", progress=batch.advance)
        batch.result = summary_fr(summary)
    except Exception as exc:  # noqa: BLE001 - said on the screen, and logged whole
        log.exception("batch sent from the screen")
        batch.result = f"interrompu : {exc}"


@router.post("/actions/envoi-groupe")
async def send_many(request: Request) -> Response:
    """The selected rows, or all that is due, as letters or statements."""
    viewer, form = await changing_form(request, "envoi")
    app = relances(request).as_user(viewer.name)
    session = session_of(request)
    retour = safe_return(form_field(form, "retour"))
    if batch_running(request):
        return RedirectResponse(retour, status_code=303)
    statement = form_field(form, "document") == "releve"
    numbers = [n.strip() for n in form.getlist("numeros") if isinstance(n, str) and n.strip()]
    everything = form_field(form, "tout") == "1"
    if not numbers and not everything:
        session.flash("Cochez au moins une facture, ou envoyez tout ce qui est dû.", "error")
        return RedirectResponse(retour, status_code=303)
    ids: set[int] = set()
    already = 0
    kept: list[str] = []  # selected rows no reminder may go to, and why
    try:
        async with app.sessions.begin() as db:
            requests: list[outbox.Request] = []
            if everything:
                requests.append(_request(app, form, statement=statement))
            else:
                codes = set()
                for number in numbers:
                    invoice = await book.invoice_by_number(db, number)
                    customer = await book.customer_of(db, invoice)
                    why = held_back(app.settings, customer, invoice, app.settings.today())
                    if why:
                        kept.append(f"{number} : {why}")
                    elif statement:
                        codes.add(customer.code)
                    else:
                        requests.append(_request(app, form, invoice=number))
                requests += [_request(app, form, customer=code, statement=True)
                             for code in sorted(codes)]
            for wanted in requests:
                queued = await outbox.queue(db, app.settings, wanted, user=viewer.name)
                ids.update(queued.ids)
                ids.update(await outbox.waiting_for(db, wanted))
                already += queued.already
    except (LedgerError, ValueError) as exc:
        session.flash(str(exc), "error")
        return RedirectResponse(retour, status_code=303)
    if kept:
        session.flash("Non envoyées : " + " ; ".join(kept[:20])
                      + (f" ; et {len(kept) - 20} autres" if len(kept) > 20 else "") + ".",
                      "error")
    if not ids:
        session.flash("Rien à envoyer : " + (
            f"{already} déjà envoyée(s) ou en file." if already else
            "aucune relance n'est due (chaque facture a reçu celle de son niveau, ou ses "
            "relances sont suspendues)."), "error")
        return RedirectResponse(retour, status_code=303)
    start_batch(request, app, sorted(ids), already)
    return RedirectResponse(retour, status_code=303)


def batch_running(request: Request) -> bool:
    """Whether a batch is going on; if so, the person is told to wait."""
    batch = request.app.state.batch
    if batch is not None and batch.running:
        session_of(request).flash("Un envoi groupé est déjà en cours : attendez qu'il finisse.",
                                  "error")
        return True
    return False


def start_batch(request: Request, app: App, ids: list[int], already: int) -> None:
    """Send ``ids`` after the answer; the reminders table shows how far it got."""
    batch = Batch(app.user, utcnow(), len(ids))
    batch.task = asyncio.create_task(_run_batch(batch, app, renderer_of(request), ids))
    request.app.state.batch = batch
    skipped = f" ({already} déjà envoyée(s) ou en file)" if already else ""
    session_of(request).flash(f"Envoi de {_plural(len(ids), 'relance')} commencé{skipped} : "
                              "l'avancement s'affiche en haut du tableau des relances.")


async def send_now(request: Request, app: App, ids: list[int], what: str) -> None:
    """Send ``ids`` while the browser waits, and say what became of them."""
    summary = await _dispatch(app, renderer_of(request), ids, "send")
    failed = summary.failed or summary.retrying
    session_of(request).flash(f"{what} : {summary_fr(summary)}."
                              + "".join(f" {reason}" for reason in summary.reasons),
                              "error" if failed else "info")


@router.post("/actions/escalade")
async def escalate_from_screen(request: Request) -> Response:
    """Raise eligible invoices one level; with ``simulation``, show what would change first."""
    viewer, form = await changing_form(request, "envoi")
    app = relances(request)
    code = form_field(form, "client") or None
    dry_run = form_field(form, "simulation") == "1"
    try:
        async with app.sessions.begin() as db:
            if code is not None:
                code = (await book.customer_by_code(db, code)).code
            result = await escalate(db, app.settings, as_of=app.settings.today(),
                                    user=viewer.name, customer=code, dry_run=dry_run)
    except (LedgerError, ValueError) as exc:
        session_of(request).flash(str(exc), "error")
        return RedirectResponse("/relances", status_code=303)
    if dry_run:
        pages: Pages = request.app.state.pages
        return pages.render(request, "escalade.html", result=result, code=code or "",
                            changes=result.changes[:SHOWN], shown=SHOWN)
    moved = ", ".join(f"niveau {level} : {n}" for level, n in result.moved.items() if n)
    session_of(request).flash(
        f"{_plural(result.total, 'facture')} passée{'s' if result.total > 1 else ''} au niveau "
        f"supérieur" + (f" ({moved})" if moved else "") + (f" pour {code}" if code else "") + ".")
    target = f"/relances?client={quote(code, safe='')}" if code else "/relances"
    return RedirectResponse(target, status_code=303)
