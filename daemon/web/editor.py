"""Courriers: each level's letter written in the screen, per language, with
the merge fields to drop into the text, a PDF preview of the draft on a
real invoice, and saving through the same template check as at load.

What it writes is the user's templates folder (:mod:`..letters.editing`),
never the package; the ``admin`` role may edit, as it may manage accounts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

from fastapi import APIRouter
from sqlalchemy import select
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from relances.daemon.errors import ConfigError, LedgerError, RelancesError
from relances.daemon.letters import editing, options
from relances.daemon.letters.documents import prepare_letter
from relances.daemon.letters.mergefields import LETTER_FIELDS
from relances.daemon.letters.pool import Renderer
from relances.daemon.letters.templating import LANGUAGES, user_folder
from relances.daemon.models import Invoice
from relances.daemon.web.auth import PageViewer, changing_form, form_field, relances, session_of
from relances.daemon.web.rendering import Pages

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
LANGUAGE_LABELS = {"fr": "français", "en": "anglais"}
# The preview is shown in a frame of the editor's page, and nowhere else.
FRAMED = {"Content-Security-Policy": "frame-ancestors 'self'", "X-Frame-Options": "SAMEORIGIN"}


def merge_fields() -> list[tuple[str, str]]:
    """The fields a letter may use, as ``{{ … }}`` expressions, with what each holds."""
    fields = []
    for path, text in LETTER_FIELDS.items():
        if path.startswith("invoices[]."):
            if path.count("[]") > 1:
                continue
            path = "invoice." + path.removeprefix("invoices[].")
        elif "[]" in path or path in ("invoice", "invoices"):
            continue
        fields.append((path, text))
    return fields


def _choice(value: str, allowed: tuple[str, ...], default: str) -> str:
    return value if value in allowed else default


def _field(form: FormData, name: str) -> str:
    return form_field(form, name, strip=False)  # a template's spaces are its own


def _where(form: FormData | Any) -> tuple[int, str]:
    """The letter a page asks for (an unknown one shows level 1 in French)."""
    level = int(_choice(str(form.get("niveau", "1")), ("1", "2", "3"), "1"))
    return level, _choice(str(form.get("langue", "fr")), LANGUAGES, "fr")


def _posted(form: FormData) -> tuple[int, str]:
    """The letter a form changes: exactly one that exists, or nothing is changed."""
    level, language = _field(form, "niveau"), _field(form, "langue")
    if level not in ("1", "2", "3") or language not in LANGUAGES:
        raise ConfigError(f"aucune lettre de niveau « {level[:10]} » en « {language[:10]} » "
                          "(niveaux 1 à 3, langues fr et en) : rien n'est changé")
    return int(level), language


async def _refused(request: Request, exc: ConfigError) -> Response:
    session_of(request).flash(str(exc), "error")
    return RedirectResponse("/courriers", status_code=303)


async def _sample_invoice(request: Request) -> str:
    async with relances(request).sessions() as session:
        number = await session.scalar(select(Invoice.number).where(Invoice.remaining > 0)
                                      .order_by(Invoice.due_date, Invoice.number).limit(1))
    return number or ""


async def _attach(request: Request, level: int) -> list[tuple[str, bool]]:
    """(policy, joins the invoice's copy) at ``level``, as set on the screen or in settings."""
    app = relances(request)
    async with app.sessions() as session:
        chosen = await options.attach_choices(session)
    return [(name, chosen.get((name, level), policy.level(level).attach_invoice))
            for name, policy in app.settings.policies.items()]


async def _page(request: Request, level: int, language: str, text: str, own: bool,
                numero: str, status_code: int = 200) -> Response:
    app = relances(request)
    pages: Pages = request.app.state.pages
    return pages.render(
        request, "courriers.html", status_code=status_code, level=level, language=language,
        text=text, own=own, languages=LANGUAGE_LABELS, fields=merge_fields(),
        attach=await _attach(request, level), folder=user_folder(app.settings),
        numero=numero or await _sample_invoice(request))


@router.get("/courriers")
async def editor_page(request: Request, viewer: PageViewer) -> Response:
    viewer.require("admin")
    level, language = _where(request.query_params)
    text, own = editing.source_of(relances(request).settings, language, level)
    return await _page(request, level, language, text, own,
                       request.query_params.get("numero", ""))


@router.post("/courriers/apercu")
async def preview_draft(request: Request) -> Response:
    """The draft rendered as the letter of a real invoice; shown in the editor's frame."""
    viewer, form = await changing_form(request, "admin")
    app = relances(request)
    number = _field(form, "numero").strip()
    pages: Pages = request.app.state.pages
    try:
        level, language = _posted(form)
    except ConfigError as exc:
        answer = pages.render(request, "apercu_erreur.html", status_code=422, text=str(exc))
        answer.headers.update(FRAMED)
        return answer
    try:
        with editing.drafted(app.settings, language, level, _field(form, "texte")) as draft:
            async with app.sessions() as session:
                job = await prepare_letter(session, draft, number, level=level,
                                           as_of=app.settings.today())
            if job.language != language:  # the edited language, whatever the customer's
                job = dataclasses.replace(job, language=language,
                                          context={**job.context, "language": language})
            rendered = await asyncio.to_thread(Renderer(draft, workers=1).render_sync, job)
    except (RelancesError, LedgerError) as exc:
        answer = pages.render(request, "apercu_erreur.html", status_code=422, text=str(exc))
        answer.headers.update(FRAMED)
        return answer
    return Response(rendered.letter_pdf, media_type="application/pdf", headers={
        **FRAMED, "Content-Disposition": f'inline; filename="apercu-{job.filename}"'})


@router.post("/courriers/enregistrer")
async def save_draft(request: Request) -> Response:
    viewer, form = await changing_form(request, "admin")
    app = relances(request)
    try:
        level, language = _posted(form)
    except ConfigError as exc:
        return await _refused(request, exc)
    text = _field(form, "texte")
    here = f"/courriers?niveau={level}&langue={language}"
    try:
        path = await asyncio.to_thread(editing.save, app.settings, language, level, text)
    except ConfigError as exc:
        session_of(request).flash(f"Modèle refusé, rien n'est enregistré : {exc}", "error")
        # The page again with the draft, so that nothing typed is lost.
        return await _page(request, level, language, text, True, _field(form, "numero"),
                           status_code=422)
    log.info("%s saved %s", viewer.name, path)
    session_of(request).flash(f"Lettre de niveau {level} ({LANGUAGE_LABELS[language]}) "
                              f"enregistrée dans {path}.")
    return RedirectResponse(here, status_code=303)


@router.post("/courriers/retablir")
async def restore_builtin(request: Request) -> Response:
    viewer, form = await changing_form(request, "admin")
    try:
        level, language = _posted(form)
    except ConfigError as exc:
        return await _refused(request, exc)
    if _field(form, "confirmer") != "1":
        session_of(request).flash("Cochez la case pour confirmer : votre version de la lettre "
                                  "serait perdue.", "error")
    elif editing.restore(relances(request).settings, language, level):
        log.info("%s restored the built-in letter %s/%s", viewer.name, language, level)
        session_of(request).flash(f"Lettre de niveau {level} : le modèle fourni s'applique "
                                  "de nouveau.")
    return RedirectResponse(f"/courriers?niveau={level}&langue={language}", status_code=303)


@router.post("/courriers/copie")
async def set_attach(request: Request) -> Response:
    """Tick or untick "joindre la copie de la facture" for a level of a policy."""
    viewer, form = await changing_form(request, "admin")
    app = relances(request)
    try:
        level, language = _posted(form)
    except ConfigError as exc:
        return await _refused(request, exc)
    policy = _field(form, "politique") or options.DEFAULT_POLICY
    if policy not in app.settings.policies:
        session_of(request).flash(f"Politique inconnue : {policy}", "error")
    else:
        attach = _field(form, "joindre") == "1"
        async with app.sessions.begin() as session:
            await options.set_attach_invoice(session, app.settings, policy, level, attach,
                                             user=viewer.name)
        log.info("%s: level %s of policy %s %s the invoice's copy", viewer.name, level, policy,
                 "joins" if attach else "no longer joins")
        said = "joint" if attach else "ne joint plus"
        session_of(request).flash(f"La lettre de niveau {level} ({policy}) {said} la copie de "
                                  "la facture.")
    return RedirectResponse(f"/courriers?niveau={level}&langue={language}", status_code=303)
