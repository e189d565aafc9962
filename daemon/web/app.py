"""The ASGI application of the web screen: its middleware, routes and error pages."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from urllib.parse import quote

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from relances.daemon.storage import App
from relances.daemon.web import (
    actions,
    api,
    dashboard,
    editor,
    exports,
    login,
    pages,
    review,
    sending,
)
from relances.daemon.web.auth import CsrfRefused, Forbidden, LoginRequired, NotFound
from relances.daemon.web.guard import LoginLimiter, security_headers
from relances.daemon.web.rendering import STATIC, Pages
from relances.daemon.web.sessions import COOKIE, SessionCodec, session_secret


def _version() -> str:
    try:
        return version("relances")
    except PackageNotFoundError:
        return "0"


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def create_app(app: App, *, secret: str | None = None, shared: bool = False) -> FastAPI:
    """The web screen over ``app``'s settings and database; closes the database on
    shutdown, unless ``shared`` (the daemon's, which closes it itself)."""
    settings = app.settings.web

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await app.ready()
        try:
            yield
        finally:
            batch = web.state.batch
            if batch is not None and batch.task is not None and not batch.task.done():
                batch.task.cancel()  # what was claimed goes back to the outbox when leases end
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await batch.task
            if web.state.renderer is not None:
                web.state.renderer.close()
            if not shared:
                await app.close()

    web = FastAPI(title="Relances", version=_version(), lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None,
                  servers=[{"url": settings.base_url}],
                  description="Relances' JSON API: the reminders table, invoices, customers, "
                              "payments and holds. Send `Authorization: Bearer TOKEN` "
                              "(`relances user token NAME --role …`).")
    web.state.relances = app
    web.state.pages = Pages()
    web.state.codec = SessionCodec(secret or session_secret(app.settings),
                                   idle_seconds=settings.idle_minutes * 60)
    web.state.renderer = None  # render workers, started at the first letter (sending)
    web.state.batch = None  # the batch sent from the screen, if any (sending.Batch)
    web.state.limiter = LoginLimiter(settings.login_attempts, settings.login_window_seconds)

    async def session_cookie(request: Request,
                             call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if request.url.path.startswith("/static/"):
            return await call_next(request)
        codec: SessionCodec = web.state.codec
        session = codec.read(request.cookies.get(COOKIE))
        request.state.session = session
        response = await call_next(request)
        if _is_api(request):
            # The API changes nothing on a cookie's word (bearer tokens only), and sets none.
            return response
        response.set_cookie(COOKIE, codec.write(session), httponly=True, samesite="lax",
                            secure=settings.secure_cookies, path="/")
        return response

    # The last added runs first: the headers go on every answer, error pages included.
    web.middleware("http")(session_cookie)
    web.middleware("http")(security_headers)
    if settings.trusted_proxies:
        # The client's address and scheme from the listed proxies' forwarded headers
        # (the login limits, the logs); from any other client the headers are ignored.
        web.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(settings.trusted_proxies))
    web.mount("/static", StaticFiles(directory=STATIC), name="static")
    for module in (login, exports, pages, actions, sending, review, dashboard, editor, api):
        web.include_router(module.router)
    _error_pages(web)
    return web


def _error_pages(web: FastAPI) -> None:
    def page(request: Request, status: int, title: str, text: str) -> Response:
        if _is_api(request):
            return JSONResponse({"detail": text}, status_code=status)
        pages_: Pages = web.state.pages
        return pages_.render(request, "error.html", status_code=status, title=title, text=text)

    @web.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        if _is_api(request):
            return JSONResponse({"detail": "authentification requise"}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method != "GET":
            target = "/relances"
        return RedirectResponse(f"/login?suivant={quote(target, safe='')}", status_code=303)

    @web.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> Response:
        return page(request, 403, "Accès refusé",
                    f"Votre rôle ne permet pas cette action (rôle « {exc.needed} » requis).")

    @web.exception_handler(CsrfRefused)
    async def csrf_refused(request: Request, exc: CsrfRefused) -> Response:
        return page(request, 403, "Formulaire refusé",
                    "Ce formulaire a expiré ou ne vient pas de cette page : "
                    "rechargez la page et recommencez.")

    @web.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if _is_api(request):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code,
                                headers=exc.headers)
        title, text = {
            404: ("Introuvable", "Cette page n'existe pas."),
            405: ("Action impossible", "Cette adresse ne s'utilise pas ainsi."),
        }.get(exc.status_code, ("Erreur", f"La demande n'a pas abouti ({exc.status_code})."))
        return page(request, exc.status_code, title, text)

    @web.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> Response:
        return page(request, 404, "Introuvable", str(exc))
