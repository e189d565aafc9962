"""``relances web``: the web screen, served by uvicorn; and the same screen
beside the service in ``relances daemon`` when ``web.enabled`` is set."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import click

from relances.daemon.cli.main import Context, pass_context
from relances.daemon.errors import ConfigError
from relances.daemon.logs import configure_logging

if TYPE_CHECKING:
    import uvicorn

    from relances.daemon.storage import App

log = logging.getLogger(__name__)


def _server(app: App, host: str, port: int, *, shared: bool = False,
            embedded: bool = False) -> uvicorn.Server:
    import uvicorn

    from relances.daemon.web.app import create_app

    class EmbeddedServer(uvicorn.Server):
        """A server that leaves the signals to the service it runs beside."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            # uvicorn exits the process when it cannot listen; beside the
            # service, that is the service's to say and to do.
            try:
                await super().startup(sockets)
            except SystemExit:
                self.should_exit = True

    # The forwarded headers are read by the application, from web.trusted_proxies
    # only: uvicorn's own reading stays off, so no client chooses its address.
    config = uvicorn.Config(create_app(app, shared=shared), host=host, port=port,
                            log_config=None, access_log=False, server_header=False,
                            proxy_headers=False, lifespan="on")
    return EmbeddedServer(config) if embedded else uvicorn.Server(config)


@contextlib.asynccontextmanager
async def served_beside(app: App) -> AsyncIterator[None]:
    """The screen on ``web.host:web.port`` for as long as the block runs, in this
    event loop, over the service's own ``app`` (its settings follow a reload)."""
    settings = app.settings.web
    server = _server(app, settings.host, settings.port, shared=True, embedded=True)
    task = asyncio.create_task(server.serve())
    while not server.started and not task.done():
        await asyncio.sleep(0.05)
    if not server.started:
        # uvicorn has said why on the log (the port taken, the address unknown).
        await task
        raise ConfigError(f"web: cannot serve the screen on {settings.host}:{settings.port} "
                          "(web.host, web.port; the log says why)")
    log.info("web screen at %s/relances", settings.base_url)
    try:
        yield
    finally:
        server.should_exit = True
        await task


@click.command("web")
@click.option("--host", default=None, help="Address to listen on [default: web.host, 127.0.0.1].")
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help="Port [default: web.port, 8080].")
@pass_context
def web_command(ctx: Context, host: str | None, port: int | None) -> None:
    """Serve the web screen (the reminders table at /relances, the API at /api/)."""
    configure_logging("DEBUG" if ctx.verbose > 1 else "INFO")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    app = ctx.app()
    settings = app.settings.web
    host, port = host or settings.host, port or settings.port

    async def serve() -> None:
        await app.ready()  # a database to upgrade is said before the port opens
        server = _server(app, host, port)
        where = settings.public_url or f"http://{host}:{port}"
        click.echo(f"relances web: {where}/relances", err=True)
        await server.serve()

    asyncio.run(serve())


COMMANDS = [web_command]
