"""The database: engine, sessions, schema migrations, and :class:`App`.

The engine is built by :func:`create_engine`, never at import time.  SQLite
runs in WAL mode with foreign keys on and a busy timeout, so the CLI and the
daemon can share one file on one host; PostgreSQL is chosen by the URL.

:class:`App` is what every unit of work needs: the settings, the user
written into the history, and the database's sessions.  It is built once
per command-line invocation (and once per daemon start) and holds no ORM
state of its own.
"""

from __future__ import annotations

import getpass
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine

from relances.daemon.config import Settings, load_settings
from relances.daemon.errors import ConfigError

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")


def is_sqlite(engine: AsyncEngine | Connection) -> bool:
    return engine.dialect.name == "sqlite"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """Build the async engine for a database URL.

    A SQLite URL gets its folder created and its connection pragmas set.
    """
    try:
        parsed = make_url(url)
    except Exception:
        raise ConfigError(f"database.url: not a database URL: {url!r}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        if parsed.get_driver_name() != "aiosqlite":
            parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif backend == "postgresql":
        if parsed.get_driver_name() != "asyncpg":
            parsed = parsed.set(drivername="postgresql+asyncpg")
    else:
        raise ConfigError(f"database.url: unsupported database {backend!r} "
                          "(use sqlite or postgresql)")
    engine = _create_async_engine(parsed, echo=echo, pool_pre_ping=backend != "sqlite")
    if backend == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def upsert(session: AsyncSession, table: Any) -> Any:
    """``INSERT`` with ``ON CONFLICT`` clauses, for the session's database."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def _alembic_config(connection: Connection) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def _upgrade(connection: Connection, revision: str = "head") -> None:
    command.upgrade(_alembic_config(connection), revision)


def _current(connection: Connection) -> tuple[str | None, str | None]:
    context = MigrationContext.configure(connection)
    head = ScriptDirectory.from_config(_alembic_config(connection)).get_current_head()
    return context.get_current_revision(), head


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

    async def ready(self) -> None:
        """Fail with a clear message unless the schema is up to date."""
        await check_schema(self.engine)

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None
            self._sessions = None
