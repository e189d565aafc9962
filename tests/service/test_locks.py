"""Single-instance lock on SQLite (real processes) and advisory locks on PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from relances.daemon import storage
from relances.daemon.errors import RelancesError
from relances.daemon.service.jobs import ESCALATION_LOCK
from relances.daemon.service.locks import (
    AlreadyRunning,
    SingleInstanceLock,
    advisory_key,
    instance_lock_for,
    sqlite_database_path,
    try_advisory_lock,
)

LOCK = ESCALATION_LOCK

# A second daemon, as a process of its own: exit 3 with the message when refused.
SECOND = """
import sys
from relances.daemon.service.locks import AlreadyRunning, SingleInstanceLock
try:
    with SingleInstanceLock(sys.argv[1]):
        print("acquired", flush=True)
except AlreadyRunning as exc:
    print(exc, flush=True)
    sys.exit(3)
"""

# A daemon that takes the lock and waits to be killed.
HOLDER = """
import sys, time
from relances.daemon.service.locks import SingleInstanceLock
lock = SingleInstanceLock(sys.argv[1])
lock.acquire()
print("locked", flush=True)
time.sleep(120)
"""


def _second(database: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", SECOND, str(database)],
                          capture_output=True, text=True, timeout=60)


def test_a_second_process_is_refused_until_the_first_releases(tmp_path: Path) -> None:
    database = tmp_path / "data" / "relances.db"
    lock = SingleInstanceLock(database)
    lock.acquire()
    assert lock.locked
    assert lock.path == tmp_path / "data" / "relances.db.lock"
    assert lock.path.read_text() == f"{os.getpid()}\n"

    refused = _second(database)
    assert refused.returncode == 3, refused.stderr
    assert refused.stdout.strip() == (
        f"another relances daemon is already running on {database} (pid {os.getpid()})")

    lock.release()
    assert not lock.locked
    accepted = _second(database)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert accepted.stdout.strip() == "acquired"


def test_a_killed_daemon_leaves_no_stale_lock(tmp_path: Path) -> None:
    database = tmp_path / "relances.db"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(database)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(AlreadyRunning, match=rf"\(pid {holder.pid}\)"):
            SingleInstanceLock(database).acquire()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        assert holder.stdout is not None
        holder.stdout.close()
    # The pid of the dead daemon is still written, but the lock is free.
    assert holder.pid == int(SingleInstanceLock(database).path.read_text())
    with SingleInstanceLock(database) as lock:
        assert lock.locked
        assert lock.path.read_text() == f"{os.getpid()}\n"
    assert lock.path.read_text() == ""


def test_the_error_is_one_of_the_projects(tmp_path: Path) -> None:
    with SingleInstanceLock(tmp_path / "relances.db"), pytest.raises(RelancesError):
        SingleInstanceLock(tmp_path / "relances.db").acquire()


def test_acquiring_twice_in_one_object_is_harmless(tmp_path: Path) -> None:
    lock = SingleInstanceLock(tmp_path / "relances.db")
    lock.acquire()
    lock.acquire()
    lock.release()
    lock.release()
    assert _second(tmp_path / "relances.db").returncode == 0


def test_the_lock_follows_the_database_url(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'data' / 'relances.db'}"
    assert sqlite_database_path(url) == (tmp_path / "data" / "relances.db").resolve()
    lock = instance_lock_for(url)
    assert lock is not None
    assert lock.path.name == "relances.db.lock"
    assert instance_lock_for("postgresql+asyncpg://postgres@127.0.0.1:5432/test") is None
    assert instance_lock_for("sqlite+aiosqlite:///:memory:") is None


def test_advisory_keys_are_stable_signed_64_bit_numbers() -> None:
    # Daemons of one release must compute the same key on every host.
    # The escalation job's lock: a change here would let daemons of two
    # releases escalate at the same time during a rolling update.
    assert advisory_key(ESCALATION_LOCK) == -199445558668909023
    assert advisory_key("a") != advisory_key("b")
    assert -(2**63) <= advisory_key("x" * 1000) < 2**63


async def _holders(conn: object, key: int) -> int:
    # pg_locks shows a bigint key as two unsigned 32-bit halves, objsubid 1.
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    result = await conn.execute(  # type: ignore[attr-defined]
        text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
             "AND objsubid = 1 AND classid::bigint = :high AND objid::bigint = :low"),
        {"high": unsigned >> 32, "low": unsigned & 0xFFFFFFFF})
    return int(result.scalar_one())


async def test_postgres_one_transaction_at_a_time(postgres_url: str) -> None:
    first_engine = storage.create_engine(postgres_url)
    second_engine = storage.create_engine(postgres_url)
    try:
        async with first_engine.connect() as first, second_engine.connect() as second:
            assert await try_advisory_lock(first, LOCK)
            # Re-entrant within the same transaction.
            assert await try_advisory_lock(first, LOCK)
            assert not await try_advisory_lock(second, LOCK)
            await second.rollback()
            # Another name is another lock.
            assert await try_advisory_lock(second, "relances:other")
            await second.commit()

            await first.commit()  # the end of the transaction releases it
            assert await try_advisory_lock(second, LOCK)
            assert not await try_advisory_lock(first, LOCK)
            await first.rollback()
            await second.rollback()
            assert await try_advisory_lock(first, LOCK)
            await first.rollback()
    finally:
        await first_engine.dispose()
        await second_engine.dispose()


async def test_postgres_sessions_and_a_lock_visible_in_pg_locks(postgres_url: str) -> None:
    engine = storage.create_engine(postgres_url)
    sessions = storage.sessionmaker(engine)
    key = advisory_key(LOCK)
    try:
        async with sessions() as first, sessions() as second, engine.connect() as observer:
            assert await try_advisory_lock(first, LOCK)
            assert await _holders(observer, key) == 1
            await observer.rollback()
            assert not await try_advisory_lock(second, LOCK)
            await second.rollback()
            await first.commit()
            assert await _holders(observer, key) == 0
            await observer.rollback()
            assert await try_advisory_lock(second, LOCK)
            await second.commit()
    finally:
        await engine.dispose()


async def test_sqlite_always_grants_the_lock(tmp_path: Path) -> None:
    engine = storage.create_engine(f"sqlite+aiosqlite:///{tmp_path / 'relances.db'}")
    sessions = storage.sessionmaker(engine)
    try:
        async with engine.connect() as conn, sessions() as session:
            assert await try_advisory_lock(conn, LOCK)
            assert await try_advisory_lock(session, LOCK)
    finally:
        await engine.dispose()
