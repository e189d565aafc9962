"""Revision 0006 (reminders awaiting their channel's confirmation) upgrades a 0005 database.

A database made by the previous release (revision 0005) holds reminders in
every state it knew; after ``relances init`` they keep their states, a
reminder may wait in the new state ``awaiting``, and a state nobody knows
is still refused, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest
from helpers import Cli, write_settings
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from test_migrations import HEAD, empty_database  # noqa: F401 - fixture

from relances.daemon import storage

NOW = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
RELEASE_0005 = [
    "INSERT INTO customers (id, code, name, language, kind, opted_out, created_at, updated_at) "
    "VALUES (1, 'INT01', 'INTEL', 'fr', 'business', :no, :now, :now)",
    "INSERT INTO reminders (id, key, kind, customer_id, level, channels, state, attempts, "
    "next_attempt_at, requested_by, created_at, sent_at, sent_channel, reference) VALUES "
    "(1, 'letter:F1:1:print', 'letter', 1, 1, 'print', 'sent', 1, :now, 'daemon', :now, :now, "
    "'print', 'PDF-1'), "
    "(2, 'letter:F2:1:print', 'letter', 1, 1, 'print', 'pending', 0, :now, 'daemon', :now, "
    "NULL, NULL, NULL)",
]


async def _database_of_release_0005(url: str) -> None:
    engine = storage.create_engine(url)
    try:
        assert await storage.upgrade(engine, "0005") == (None, "0005")
        async with engine.begin() as conn:
            for statement in RELEASE_0005:
                await conn.execute(text(statement), {"no": False, "now": NOW})
    finally:
        await engine.dispose()


async def _set_state(url: str, state: str) -> None:
    engine = storage.create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE reminders SET state = :state, handed_over_at = :now "
                                    "WHERE id = 2"), {"state": state, "now": NOW})
    finally:
        await engine.dispose()


async def _states(url: str) -> list[tuple[int, str, str | None]]:
    engine = storage.create_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT id, state, reference FROM reminders ORDER BY id"))
            return [tuple(row) for row in rows]  # type: ignore[misc]
    finally:
        await engine.dispose()


def test_a_0005_database_upgrades_and_reminders_may_await(empty_database: str,  # noqa: F811
                                                          tmp_path: Path) -> None:
    asyncio.run(_database_of_release_0005(empty_database))
    cli = Cli(write_settings(tmp_path / "settings.yaml", {"database.url": empty_database}))
    assert f"database upgraded from revision 0005 to {HEAD}" in cli("init").stdout
    assert asyncio.run(_states(empty_database)) == [(1, "sent", "PDF-1"), (2, "pending", None)]
    asyncio.run(_set_state(empty_database, "awaiting"))
    assert asyncio.run(_states(empty_database))[1][1] == "awaiting"
    with pytest.raises(IntegrityError):
        asyncio.run(_set_state(empty_database, "lost"))
    assert "Outbox: 0 pending, 0 sending, 1 awaiting, 1 sent" in cli("status").stdout
