"""The ``relances`` click group: top-level options, lazy command loading, one-line errors."""

from __future__ import annotations

import asyncio
import functools
import gc
import importlib
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from relances.daemon.config import default_config_path
from relances.daemon.errors import DatabaseError, RelancesError

if TYPE_CHECKING:
    # Imported when a command opens the database, not by `relances` itself: a
    # command that renders forks its render worker first (rendering_command),
    # and that worker needs none of SQLAlchemy.
    from relances.daemon.storage import App

T = TypeVar("T")

PRIVATE = 0o027
"""Umask bits every run adds: nothing it writes is readable by others."""


class Context:
    """What the top-level options give every command."""

    def __init__(self, config: Path, user: str | None, verbose: int) -> None:
        self.config = config
        self._user = user
        self.verbose = verbose

    @property
    def user(self) -> str:
        """``--user``, else ``$RELANCES_USER`` or the login name."""
        if self._user is None:
            from relances.daemon.storage import default_user

            self._user = default_user()
        return self._user

    def app(self) -> App:
        from relances.daemon.storage import App

        return App.load(self.config, self.user)


pass_context = click.make_pass_decorator(Context)


def run(ctx: Context, body: Callable[[App], Awaitable[T]], *, check_schema: bool = True,
        app: App | None = None) -> T:
    """Run ``body(app)`` on a fresh event loop and close the database after."""

    async def main() -> T:
        nonlocal app
        app = app or ctx.app()
        try:
            if check_schema:
                await app.ready()
            return await body(app)
        finally:
            await app.close()

    return asyncio.run(main())


# Command name → module under relances.daemon.cli.  Modules are imported
# when their command runs: WeasyPrint alone takes over a second to import, and
# `relances list` has no use for it.
COMMANDS: dict[str, str] = {
    "init": "setup", "check-config": "setup",
    "import": "imports", "pay": "ledger", "hold": "ledger", "release": "ledger",
    "note": "ledger", "set-level": "ledger",
    "list": "table", "customer": "table", "invoice": "table", "history": "table",
    "escalate": "escalate",
    "preview": "letters", "report": "letters",
    "send": "send", "reprint": "send", "mail": "send",
    "daemon": "daemon", "status": "daemon",
    "plugins": "plugins", "bank": "bank",
    "user": "users", "web": "web", "backup": "backup",
}


class RelancesGroup(click.Group):
    """Loads commands on demand; turns the project's errors into one line and exit 1."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module_name = COMMANDS.get(cmd_name)
        if module_name is None:
            return None
        module = importlib.import_module(f"relances.daemon.cli.{module_name}")
        for command in module.COMMANDS:
            if command.name == cmd_name:
                return command
        raise RuntimeError(f"relances.daemon.cli.{module_name} has no command {cmd_name!r}")

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (RelancesError, DatabaseError) as exc:
            click.echo(f"relances: error: {exc}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("relances: interrupted", err=True)
            sys.exit(130)
        finally:
            # The interpreter's last garbage collection would walk every object of
            # the modules loaded (SQLAlchemy's alone: a fifth of a second) only to
            # find nothing to collect; the process ends anyway.
            gc.freeze()


@click.group(cls=RelancesGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config", "config", type=click.Path(path_type=Path), default=None,
    help="Settings file [default: $RELANCES_CONFIG or ./settings.yaml].",
)
@click.option("--user", default=None, help="Name written into history [default: $RELANCES_USER or login].")
@click.option("-v", "--verbose", count=True, help="More logging (-vv for debug).")
@click.version_option(package_name="relances")
@click.pass_context
def main(ctx: click.Context, config: Path | None, user: str | None, verbose: int) -> None:
    """Relances: payment reminders for unpaid invoices."""
    keep_files_private()
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = Context(config or default_config_path(), user, verbose)


def keep_files_private() -> None:
    """Add :data:`PRIVATE` to the umask, keeping any stricter bit the caller set.

    The database, the letters and the folders hold personal data; a caller's
    umask of 022 would make them readable by every user of the host.  The
    systemd unit's ``UMask=0027`` gives the daemon the same.
    """
    os.umask(os.umask(0) | PRIVATE)


def async_command(func: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
    """Decorator: a click callback written as ``async def f(app, ...)``."""

    @functools.wraps(func)
    def wrapper(ctx: Context, *args: Any, **kwargs: Any) -> Any:
        return run(ctx, lambda app: func(app, *args, **kwargs))

    return pass_context(wrapper)


def rendering_command(workers: int | None = None) -> Callable[[Callable[..., Awaitable[Any]]],
                                                               Callable[..., Any]]:
    """Decorator: :func:`async_command` for a command that renders letters.

    Its render workers (``workers``, default one per core) start before the
    event loop, and import WeasyPrint while the command reads the ledger;
    the callback gets them as ``renderer`` and needs not close them.
    """

    def decorate(func: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(ctx: Context, *args: Any, **kwargs: Any) -> Any:
            from relances.daemon.config import load_settings
            from relances.daemon.letters.pool import Renderer

            settings = load_settings(ctx.config)
            renderer = Renderer(settings, workers=workers)
            renderer.start_early()
            from relances.daemon.storage import App

            app = App(settings=settings, user=ctx.user)
            try:
                return run(ctx, lambda app: func(app, *args, renderer=renderer, **kwargs),
                           app=app)
            finally:
                renderer.close()

        return pass_context(wrapper)

    return decorate


async def warn_unknown_kinds(session: Any) -> None:
    """Say once, on stderr, how many customers' letters claim no charges for want of a kind."""
    from relances.daemon.ledger.book import unknown_kind_customers

    codes = await unknown_kind_customers(session)
    if codes:
        shown = ", ".join(codes[:5]) + (" …" if len(codes) > 5 else "")
        word = "client de nature inconnue" if len(codes) == 1 else "clients de nature inconnue"
        click.echo(f"warning: {len(codes)} {word} : pénalités et indemnité non mentionnées "
                   f"({shown}; `relances customer CODE --kind business|public|consumer`)",
                   err=True)
