"""What every command needs: the settings, the user, the database.

``App`` is built once per command-line invocation (and once per daemon
start) and hands out sessions; it holds no ORM state of its own.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from relances.daemon import storage
from relances.daemon.config import Settings, load_settings

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
            self._engine = storage.create_engine(
                self.settings.database_url, echo=self.settings.database.echo
            )
        return self._engine

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        if self._sessions is None:
            self._sessions = storage.sessionmaker(self.engine)
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
        await storage.check_schema(self.engine)

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None
            self._sessions = None
