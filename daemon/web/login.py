"""Logging in and out."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from relances.daemon.web import accounts
from relances.daemon.web.auth import csrf_form, relances, session_of
from relances.daemon.web.guard import LoginLimiter, safe_return
from relances.daemon.web.rendering import Pages

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)


def _pages(request: Request) -> Pages:
    pages: Pages = request.app.state.pages
    return pages


@router.get("/")
async def home() -> Response:
    return RedirectResponse("/relances", status_code=303)


@router.get("/login")
async def login_page(request: Request, suivant: str = "/relances") -> Response:
    return _pages(request).render(request, "login.html", suivant=safe_return(suivant), login_name="")


@router.post("/login")
async def login_submit(request: Request) -> Response:
    session = session_of(request)
    form = await csrf_form(request)
    name = str(form.get("nom", "")).strip()[:100]
    password = str(form.get("mot_de_passe", ""))
    target = safe_return(str(form.get("suivant", "")))
    limiter: LoginLimiter = request.app.state.limiter
    address = request.client.host if request.client else "?"
    keys = (f"ip:{address}", f"name:{name.lower()}")
    if limiter.blocked(*keys):
        log.warning("login of %r from %s refused: too many attempts", name, address)
        session.flash("Trop de tentatives de connexion : réessayez dans quelques minutes.", "error")
        return _pages(request).render(request, "login.html", status_code=429, suivant=target,
                                      login_name=name)
    async with relances(request).sessions.begin() as db:
        user = await accounts.authenticate(db, name, password)
        if user is not None:
            session.log_in(user.name, user.password_hash)
    if user is None:
        log.warning("login of %r from %s failed", name, address)
        limiter.failed(*keys)
        session.flash("Nom ou mot de passe incorrect.", "error")
        return _pages(request).render(request, "login.html", status_code=401, suivant=target,
                                      login_name=name)
    log.info("%s logged in from %s", user.name, address)
    limiter.succeeded(keys[1])
    return RedirectResponse(target, status_code=303)


@router.post("/logout")
async def logout(request: Request) -> Response:
    session = session_of(request)
    await csrf_form(request)
    session.log_out()
    session.flash("Vous êtes déconnecté.")
    return RedirectResponse("/login", status_code=303)
