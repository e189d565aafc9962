"""``relances web``: the web screen, served by uvicorn."""

from __future__ import annotations

import asyncio
import logging

import click

from relances.daemon.cli.main import Context, pass_context
from relances.daemon.logs import configure_logging


@click.command("web")
@click.option("--host", default=None, help="Address to listen on [default: web.host, 127.0.0.1].")
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help="Port [default: web.port, 8080].")
@pass_context
def web_command(ctx: Context, host: str | None, port: int | None) -> None:
    """Serve the web screen (the reminders table at /relances, the API at /api/)."""
    import uvicorn

    from relances.daemon.web.app import create_app

    configure_logging("DEBUG" if ctx.verbose > 1 else "INFO")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    app = ctx.app()
    settings = app.settings.web
    host, port = host or settings.host, port or settings.port

    async def serve() -> None:
        await app.ready()  # a database to upgrade is said before the port opens
        web = create_app(app)
        config = uvicorn.Config(web, host=host, port=port, log_config=None, access_log=False,
                                server_header=False, proxy_headers=False, lifespan="on")
        click.echo(f"relances web: http://{host}:{port}/relances", err=True)
        await uvicorn.Server(config).serve()

    asyncio.run(serve())


COMMANDS = [web_command]
