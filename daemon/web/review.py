"""À valider: the reminders of levels that wait for a person (``auto_send:
false``), approved or dropped one by one or all at once.

The list is what ``relances send --dry-run`` would queue at those levels,
nothing written.  Approving queues and sends it as the send page does;
dropping queues it and cancels it at once, so that it is not proposed
again at this level (a later level, or ``send --force``, proposes it anew),
and says so in the history.
"""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from relances.daemon.dispatch import outbox
from relances.daemon.dispatch.records import reminder_word
from relances.daemon.errors import LedgerError
from relances.daemon.ledger import book
from relances.daemon.web.auth import PageViewer, changing_form, form_field, relances, session_of
from relances.daemon.web.rendering import Pages
from relances.daemon.web.sending import batch_running, send_now, start_batch

router = APIRouter(include_in_schema=False)
SHOWN = 500
HERE = "/a-valider"


def _requests(form: FormData) -> list[outbox.Request]:
    """The reminders a form names: one letter (``numero``), one customer's statement
    (``client``), or every one waiting (``tout``)."""
    if form_field(form, "tout") == "1":
        return [outbox.Request(review_only=True)]
    if form_field(form, "client"):
        return [outbox.Request(customer=form_field(form, "client"), statement=True,
                               review_only=True)]
    if form_field(form, "numero"):
        return [outbox.Request(invoice=form_field(form, "numero"), review_only=True)]
    raise ValueError("Aucune relance désignée.")


async def _queue(db: AsyncSession, request: Request, form: FormData,
                 user: str) -> tuple[list[int], int]:
    app = relances(request)
    ids: list[int] = []
    already = 0
    for wanted in _requests(form):
        if wanted.invoice:
            await book.invoice_by_number(db, wanted.invoice)
        if wanted.customer:
            await book.customer_by_code(db, wanted.customer)
        queued = await outbox.queue(db, app.settings, wanted, user=user)
        ids += queued.ids
        already += queued.already
    return ids, already


@router.get(HERE)
async def waiting(request: Request, viewer: PageViewer) -> Response:
    app = relances(request)
    async with app.sessions() as db:
        rows, _ = await outbox.dry_run(db, app.settings, outbox.Request(review_only=True),
                                       user=viewer.name)
    manual = sorted({level for policy in app.settings.policies.values()
                     for level, rules in policy.levels.items() if not rules.auto_send})
    pages: Pages = request.app.state.pages
    return pages.render(request, "a_valider.html", rows=rows[:SHOWN], count=len(rows),
                        shown=SHOWN, manual=manual, here=HERE)


@router.post("/actions/valider")
async def approve(request: Request) -> Response:
    viewer, form = await changing_form(request, "envoi")
    app = relances(request).as_user(viewer.name)
    if batch_running(request):
        return RedirectResponse(HERE, status_code=303)
    try:
        async with app.sessions.begin() as db:
            ids, already = await _queue(db, request, form, viewer.name)
    except (LedgerError, ValueError) as exc:
        session_of(request).flash(str(exc), "error")
        return RedirectResponse(HERE, status_code=303)
    if not ids:
        session_of(request).flash("Rien à envoyer : déjà envoyée, en file ou écartée.", "error")
    elif form_field(form, "tout") == "1":
        start_batch(request, app, ids, already)
    else:
        await send_now(request, app, ids, form_field(form, "numero") or form_field(form, "client"))
    return RedirectResponse(HERE, status_code=303)


@router.post("/actions/ecarter")
async def drop(request: Request) -> Response:
    viewer, form = await changing_form(request, "envoi")
    app = relances(request)
    try:
        async with app.sessions.begin() as db:
            ids, _ = await _queue(db, request, form, viewer.name)
            dropped = await outbox.drop(db, ids, user=viewer.name)
            for reminder in dropped:
                book.add_history(
                    db, user=viewer.name, event="dropped", invoice_id=reminder.invoice_id,
                    customer_id=reminder.customer_id, level=reminder.level,
                    action=f"{reminder_word(reminder.kind)} niveau {reminder.level} "
                           f"écarté{'' if reminder.kind == 'statement' else 'e'} à la validation")
    except (LedgerError, ValueError) as exc:
        session_of(request).flash(str(exc), "error")
        return RedirectResponse(HERE, status_code=303)
    count = len(dropped)
    session_of(request).flash(
        "Aucune relance à écarter." if count == 0 else
        "1 relance écartée : elle ne sera plus proposée à ce niveau." if count == 1 else
        f"{count} relances écartées : elles ne seront plus proposées à ce niveau.")
    return RedirectResponse(HERE, status_code=303)
