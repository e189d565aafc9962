"""Keeping daemons from stepping on each other.

On SQLite one host runs one daemon: :class:`SingleInstanceLock` holds an
``flock`` on ``<database>.lock`` for the daemon's lifetime.  The kernel
drops the lock when the process dies, however it dies, so a ``kill -9``
leaves nothing stale behind.

On PostgreSQL any number of daemons share the queue; work that must run on
one of them at a time (scheduled escalation) is guarded by
:func:`try_advisory_lock`, a transaction-scoped advisory lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from relances.daemon.errors import RelancesError

logger = logging.getLogger(__name__)

class AlreadyRunning(RelancesError):
    """Another daemon holds the single-instance lock of this database."""


class SingleInstanceLock:
    """An exclusive ``flock`` on ``<database>.lock``, holding the owner's pid.

    ``acquire()`` raises :class:`AlreadyRunning` naming the database and the
    pid of the daemon that holds it; ``release()`` (or leaving the ``with``
    block) lets the next one start.  The lock file itself is left in place:
    removing it would let a newcomer lock a fresh file while a waiter still
    holds the old, unlinked one.
    """

    def __init__(self, database: str | Path) -> None:
        self.database = Path(database)
        self.path = self.database.with_name(self.database.name + ".lock")
        self._fd: int | None = None

    @property
    def locked(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        if self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # os.open's descriptors are not inherited by subprocesses (PEP 446),
        # so an `lp` or `sendfax` child never keeps the lock alive.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _read_pid(fd)
            os.close(fd)
            holder = f"pid {owner}" if owner else "pid unknown"
            raise AlreadyRunning(
                f"another relances daemon is already running on {self.database} ({holder})"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        logger.debug("single-instance lock %s taken", self.path)

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing the last descriptor drops the flock

    def __enter__(self) -> SingleInstanceLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode().strip())
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def sqlite_database_path(url: str) -> Path | None:
    """The file of a SQLite URL; None for another database or an in-memory one."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    if not parsed.database or parsed.database == ":memory:" or parsed.database.startswith("file:"):
        return None
    return Path(parsed.database).resolve()


def instance_lock_for(url: str) -> SingleInstanceLock | None:
    """The single-instance lock a daemon must hold on ``url``; None on PostgreSQL."""
    path = sqlite_database_path(url)
    return SingleInstanceLock(path) if path is not None else None


def advisory_key(name: str) -> int:
    """A signed 64-bit advisory-lock key for ``name``.

    Derived in Python rather than with ``hashtext()``, whose results
    PostgreSQL does not promise to keep across major versions: daemons of
    one release must agree on the key whatever server they meet.
    """
    digest = hashlib.blake2b(name.encode(), digest_size=8, person=b"relances-lock").digest()
    return int.from_bytes(digest, "big", signed=True)


async def try_advisory_lock(session_or_connection: AsyncSession | AsyncConnection, name: str) -> bool:
    """Take the advisory lock ``name`` for the current transaction, if free.

    PostgreSQL: ``pg_try_advisory_xact_lock``; returns False at once when
    another transaction holds it.  The lock is released at commit or
    rollback, so the guarded work and its release are one transaction; a
    connection in AUTOCOMMIT would release it immediately.  Other databases
    (SQLite: one daemon per host, see :class:`SingleInstanceLock`) always
    get True.
    """
    if isinstance(session_or_connection, AsyncSession):
        dialect = session_or_connection.get_bind().dialect.name
    else:
        dialect = session_or_connection.dialect.name
    if dialect != "postgresql":
        return True
    result = await session_or_connection.execute(
        text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": advisory_key(name)}
    )
    taken = bool(result.scalar_one())
    logger.debug("advisory lock %r %s", name, "taken" if taken else "held elsewhere")
    return taken
