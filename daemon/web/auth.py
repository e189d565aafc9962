"""Who is asking, and may they: the session's user for pages, the bearer
token for the API, and the role every action checks on the server."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends
from starlette.datastructures import FormData
from starlette.requests import Request

from relances.daemon.errors import LedgerError
from relances.daemon.ledger import book
from relances.daemon.models import Invoice
from relances.daemon.storage import App
from relances.daemon.web import accounts
from relances.daemon.web.sessions import Session, fingerprint

ROLE_LABELS = {"lecture": "lecture", "gestion": "gestion", "envoi": "envoi",
               "admin": "administration"}


class LoginRequired(Exception):
    """Nobody is logged in (or the session ended): the login page, or 401 for the API."""


class Forbidden(Exception):
    """Logged in, but the role does not allow it."""

    def __init__(self, needed: str) -> None:
        super().__init__(needed)
        self.needed = needed


class CsrfRefused(Exception):
    """A form that changes something came without this session's CSRF token."""


class NotFound(Exception):
    """No customer or invoice by that code or number."""


async def invoice_or_404(session: Any, number: str) -> Invoice:
    """The invoice a page's address names, else the French "Introuvable" page."""
    try:
        return await book.invoice_by_number(session, number)
    except LedgerError:
        raise NotFound(f"Aucune facture n° « {number} ».") from None


@dataclass(frozen=True)
class Viewer:
    """The person (or the program) a request acts for; ``name`` goes into the history."""

    name: str
    role: str

    def may(self, needed: str) -> bool:
        return accounts.allows(self.role, needed)

    def require(self, needed: str) -> None:
        if not self.may(needed):
            raise Forbidden(needed)


def relances(request: Request) -> App:
    app: App = request.app.state.relances
    return app


def session_of(request: Request) -> Session:
    session: Session = request.state.session
    return session


async def page_viewer(request: Request) -> Viewer:
    """The logged-in user of the session, if the account still exists as it was."""
    session = session_of(request)
    if session.user is None:
        if session.expired:  # said on the login page the redirect leads to
            session.expired = False
            session.flash("Votre session a expiré : reconnectez-vous.", "error")
        raise LoginRequired()
    async with relances(request).sessions() as db:
        user = await accounts.active_user(db, session.user)
    if user is None or fingerprint(user.password_hash) != session.key:
        session.log_out()
        raise LoginRequired()
    viewer = Viewer(user.name, user.role)
    request.state.user = viewer
    return viewer


async def api_viewer(request: Request) -> Viewer:
    """The holder of the bearer token the request presents."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise LoginRequired()
    async with relances(request).sessions() as db:
        holder = await accounts.token_holder(db, token.strip())
    if holder is None:
        raise LoginRequired()
    return Viewer(f"api:{holder.name}", holder.role)


PageViewer = Annotated[Viewer, Depends(page_viewer)]


async def csrf_form(request: Request) -> FormData:
    """The posted form, once its CSRF token is this session's."""
    form = await request.form()
    token = form.get("csrf")
    if not session_of(request).csrf_ok(token if isinstance(token, str) else None):
        raise CsrfRefused()
    return form


def form_field(form: FormData, name: str, *, strip: bool = True) -> str:
    """A text field of a posted form ("" when absent, or a file)."""
    value = form.get(name, "")
    if not isinstance(value, str):
        return ""
    return value.strip() if strip else value


async def changing_form(request: Request, needed: str) -> tuple[Viewer, FormData]:
    """A form that changes something: a logged-in user, this session's CSRF token, the role."""
    viewer = await page_viewer(request)
    form = await csrf_form(request)
    viewer.require(needed)
    return viewer, form
