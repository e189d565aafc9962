"""The database: engine, sessions, schema migrations, and :class:`App`.

The engine is built by :func:`create_engine`, never at import time.  SQLite
runs in WAL mode with foreign keys on and a busy timeout, so the CLI and the
daemon can share one file on one host; PostgreSQL is chosen by the URL.

A database that cannot do the work (unreachable, read-only, full, busy)
raises :class:`DatabaseError`, one line naming the database and the
reason.  No message ever shows a statement's bound values: they hold
customers' names and addresses.

:class:`App` is what every unit of work needs: the settings, the user
written into the history, and the database's sessions.  It is built once
per command-line invocation (and once per daemon start) and holds no ORM
state of its own.
"""

from __future__ import annotations

import errno
import functools
import getpass
import logging
import os
import shutil
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, event, inspect, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, ExceptionContext, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine

from relances.daemon.config import DATABASE_URL_ENV, Settings, load_settings
from relances.daemon.errors import ConfigError, DatabaseError

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")


def is_sqlite(engine: AsyncEngine | Connection) -> bool:
    return engine.dialect.name == "sqlite"


BUSY_TIMEOUT = 30.0
"""Seconds a SQLite writer waits for another's transaction before giving up.

Read at each new connection, so that a test can shorten it; not a setting.
"""

BUSY = "base occupée : une autre importation est en cours ; réessayez quand elle sera finie"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={round(BUSY_TIMEOUT * 1000)}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def database_name(url: str | URL) -> str:
    """The database as messages name it: a SQLite file's path, else the URL without its password."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return parsed.database or ":memory:"
    return parsed.render_as_string(hide_password=True)


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """Build the async engine for a database URL.

    A SQLite URL gets its folder created and its connection pragmas set.
    The engine never puts bound values in its errors (``hide_parameters``)
    and turns the database's failures into :class:`DatabaseError`; a SQLite
    writer waits :data:`BUSY_TIMEOUT` seconds for another.
    """
    try:
        parsed = make_url(url)
    except Exception:
        raise ConfigError(f"database.url: not a database URL: {url!r}") from None
    name = database_name(parsed)
    file: Path | None = None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            _make_folder(Path(parsed.database))
            file = None if parsed.database.startswith("file:") else Path(parsed.database)
        if parsed.get_driver_name() != "aiosqlite":
            parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif backend == "postgresql":
        if parsed.get_driver_name() != "asyncpg":
            parsed = parsed.set(drivername="postgresql+asyncpg")
    else:
        raise ConfigError(f"database.url: unsupported database {backend!r} "
                          "(use sqlite or postgresql)")
    engine = _create_async_engine(parsed, echo=echo, pool_pre_ping=backend != "sqlite",
                                  hide_parameters=True)
    if backend == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    event.listen(engine.sync_engine, "do_connect", functools.partial(_connect, name, file))
    event.listen(engine.sync_engine, "handle_error", functools.partial(_failed, name, file))
    return engine


def _make_folder(file: Path) -> None:
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = "a file is in the way" if exc.errno == errno.EEXIST else exc.strerror
        raise DatabaseError(f"{file}: cannot create its folder {file.parent}: {reason}") from None


def _connect(name: str, file: Path | None, dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
    """Connect; a server that cannot be reached is one line, not the driver's traceback."""
    if file is not None:
        _check_openable(name, file)
    try:
        return dialect.connect(*cargs, **cparams)
    except TimeoutError:
        raise DatabaseError(f"{name}: cannot connect: no answer in time") from None
    except OSError as exc:
        raise DatabaseError(f"{name}: cannot connect: {_system_reason(exc)}") from None


def _system_reason(error: OSError) -> str:
    """``Connection refused``, not asyncio's "Connect call failed (address)"."""
    code = error.errno or 0
    return os.strerror(code) if code > 0 else error.strerror or str(error)


def _check_openable(name: str, file: Path) -> None:
    """Refuse what SQLite would fail to open, with the reason it does not give.

    Checked before connecting, not after: when aiosqlite fails to connect,
    its worker thread outlives the failure and prints a traceback of its own
    once the event loop is closed.
    """
    folder = file.parent
    reason = None
    if file.is_dir():
        reason = "a folder, not a database file"
    elif file.exists():
        reason = None if os.access(file, os.R_OK) else "the file is not readable"
    elif not folder.is_dir():
        reason = f"the folder {folder} does not exist"
    elif not os.access(folder, os.W_OK | os.X_OK):
        reason = f"cannot create the database: the folder {folder} is read-only"
    if reason is not None:
        raise DatabaseError(f"{name}: {reason}")


def _failed(name: str, file: Path | None, context: ExceptionContext) -> None:
    """Raise :class:`DatabaseError` when the database, not the statement, failed.

    A failed pre-ping is the pool's to handle: it connects again.  A
    cancellation or an interrupt (not an ``Exception``) stays what it is.
    """
    error = context.original_exception
    if context.is_pre_ping or not isinstance(error, Exception):
        return
    if isinstance(error, sqlite3.Error):
        reason = _sqlite_reason(error, file)
    else:
        reason = _server_reason(error, context.is_disconnect)
    if reason is not None:
        raise DatabaseError(f"{name}: {reason}")


# SQLite's result codes about the file rather than the statement.
_SQLITE_FILE_CODES = frozenset({
    sqlite3.SQLITE_PERM, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CORRUPT,
    sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_NOTADB,
})


def _sqlite_reason(error: sqlite3.Error, file: Path | None) -> str | None:
    """What went wrong, when SQLite's result code is about the file, not the statement."""
    code = (getattr(error, "sqlite_errorcode", None) or 0) & 0xFF
    if code == sqlite3.SQLITE_BUSY:
        return BUSY
    if code not in _SQLITE_FILE_CODES:
        return None
    message = str(error)
    if file is None:
        return message
    if code in (sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR) and _no_room(file.parent):
        return f"the disk is full ({message})"
    if code in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN):
        return f"{message}{_access_problem(file)}"
    return message


def _no_room(folder: Path) -> bool:
    try:
        return shutil.disk_usage(folder).free < 64 * 1024
    except OSError:
        return False


def _access_problem(file: Path) -> str:
    """Why SQLite cannot write ``file``: it says only that it cannot."""
    if file.exists() and not os.access(file, os.W_OK):
        return ": the file is read-only"
    if not os.access(file.parent, os.W_OK | os.X_OK):
        return (f": the folder {file.parent} is read-only "
                "(SQLite writes the database's -wal and -shm files there)")
    return ""


# SQLSTATEs about the server, not the statement: connection, authorization,
# unknown database, resources (disk full), operator intervention (shutdown;
# not 57014, a cancelled statement), system error, a read-only standby.
_SERVER_SQLSTATES = ("08", "28", "3D", "53", "57P", "58", "25006")


def _server_reason(error: BaseException, is_disconnect: bool) -> str | None:
    """What went wrong on PostgreSQL, when the server, not the statement, failed."""
    message = str(error).splitlines()[0] if str(error) else type(error).__name__
    if is_disconnect:
        return f"connection lost: {message}"
    sqlstate = str(getattr(error, "sqlstate", None) or "")
    if sqlstate.startswith(_SERVER_SQLSTATES):
        return message
    if isinstance(error, OSError):
        return f"connection lost: {_system_reason(error)}"
    return None


def upsert(session: AsyncSession, table: Any) -> Any:
    """``INSERT`` with ``ON CONFLICT`` clauses, for the session's database."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def _alembic_config(connection: Connection) -> AlembicConfig:
    # Alembic takes a third of a second to import: only `init` and the
    # upgrades need it, not every command's check of the schema.
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def _upgrade(connection: Connection, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(_alembic_config(connection), revision)


@functools.cache
def schema_head() -> str:
    """The newest revision: migrations are files ``versions/NNNN_what.py`` whose
    revision is their number, each following the one before (a test holds
    Alembic's own answer to this)."""
    numbers = [p.name[:4] for p in (MIGRATIONS / "versions").glob("[0-9][0-9][0-9][0-9]_*.py")]
    return max(numbers)


def _current(connection: Connection) -> tuple[str | None, str | None]:
    """The database's revision (None when empty) and the newest one."""
    current = None
    if inspect(connection).has_table("alembic_version"):
        current = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return current, schema_head()


async def upgrade(engine: AsyncEngine, revision: str = "head") -> tuple[str | None, str | None]:
    """Create or upgrade the schema to the newest revision (or to ``revision``).

    Returns the revision before and after.
    """
    async with engine.connect() as conn:
        before, _ = await conn.run_sync(_current)
    async with engine.connect() as conn:
        if is_sqlite(engine):
            # SQLite alters a table by copying it: foreign keys would refuse
            # to drop the old one.  Off for the migration, on again after.
            await conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            await conn.commit()
        try:
            await conn.run_sync(_upgrade, revision)
            await conn.commit()
        finally:
            if is_sqlite(engine):
                await conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                await conn.commit()
    async with engine.connect() as conn:
        after, _ = await conn.run_sync(_current)
    return before, after


async def check_schema(engine: AsyncEngine) -> None:
    """Raise ConfigError unless the database is at the newest revision."""
    async with engine.connect() as conn:
        current, head = await conn.run_sync(_current)
    if current != head:
        state = "empty" if current is None else f"at revision {current}"
        raise ConfigError(f"the database is {state}, not {head}: run `relances init`")


def warn_about_written_password(settings: Settings) -> None:
    """Warn when ``database.url`` holds a password: settings files end up in
    backups and version control, the environment does not."""
    if os.environ.get(DATABASE_URL_ENV) or not settings.database.url:
        return
    try:
        password = make_url(settings.database.url).password
    except Exception:  # noqa: BLE001 - create_engine says what is wrong with it
        return
    if password:
        log.warning("%s: the password is written in the settings file; put the URL in "
                    "the environment variable %s instead", settings.where("database", "url"),
                    DATABASE_URL_ENV)


USER_ENV = "RELANCES_USER"


def default_user() -> str:
    """``$RELANCES_USER``, else the login name."""
    env = os.environ.get(USER_ENV)
    if env:
        return env
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "relances"


@dataclass
class App:
    settings: Settings
    user: str = field(default_factory=default_user)
    _engine: AsyncEngine | None = None
    _sessions: async_sessionmaker[AsyncSession] | None = None
    _plugins: Any = None

    @classmethod
    def load(cls, config: str | Path | None = None, user: str | None = None) -> App:
        return cls(settings=load_settings(config), user=user or default_user())

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            warn_about_written_password(self.settings)
            self._engine = create_engine(
                self.settings.database_url, echo=self.settings.database.echo
            )
        return self._engine

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        if self._sessions is None:
            self._sessions = sessionmaker(self.engine)
        return self._sessions

    @property
    def plugins(self) -> Any:
        """The plugin manager, with the built-in channels and installed plugins."""
        if self._plugins is None:
            from relances.plugins.manager import get_plugin_manager

            self._plugins = get_plugin_manager()
        return self._plugins

    def as_user(self, user: str) -> App:
        """The same database and plugins, acting for ``user`` in the history.

        For the web screen, where each request acts for its logged-in person;
        the view shares this app's engine: close this app, not the view.
        """
        return App(settings=self.settings, user=user, _engine=self.engine,
                   _sessions=self.sessions, _plugins=self.plugins)

    async def ready(self) -> None:
        """Fail with a clear message unless the schema is up to date."""
        await check_schema(self.engine)

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None
            self._sessions = None
