"""Revision 0008 (a reply pauses the customer's reminders) upgrades a 0007 database.

A 0007 database's customer is not paused after ``relances init``, a pause
can then be written and is honoured by ``send --dry-run``, on SQLite and
on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

from helpers import Cli, write_settings
from sqlalchemy import text
from test_migrations import HEAD, empty_database  # noqa: F401 - fixture

from relances.daemon import storage

NOW = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
RELEASE_0007 = [
    "INSERT INTO customers (id, code, name, email, language, kind, opted_out, created_at, "
    "updated_at) VALUES (1, 'INT01', 'INTEL', 'compta@intel.example', 'fr', 'business', :no, "
    ":now, :now)",
    "INSERT INTO invoices (id, number, customer_id, invoice_date, due_date, total, remaining, "
    "level, on_hold, reminded_here, created_at, updated_at) VALUES (1, 'F-0007', 1, "
    "'2026-06-01', '2026-07-01', 120000, 120000, 1, :no, :no, :now, :now)",
]


async def _sql(url: str, statements: list[str], *, revision: str | None = None) -> list[tuple[object, ...]]:
    engine = storage.create_engine(url)
    try:
        if revision:
            assert await storage.upgrade(engine, revision) == (None, revision)
        async with engine.begin() as conn:
            rows: list[tuple[object, ...]] = []
            for statement in statements:
                result = await conn.execute(text(statement), {"no": False, "now": NOW})
                rows = [tuple(row) for row in result] if result.returns_rows else []
            return rows
    finally:
        await engine.dispose()


def test_a_0007_database_upgrades_and_a_pause_holds_reminders(
        empty_database: str, tmp_path: Path) -> None:  # noqa: F811
    asyncio.run(_sql(empty_database, RELEASE_0007, revision="0007"))
    cli = Cli(write_settings(tmp_path / "settings.yaml", {"database.url": empty_database}))
    assert f"database upgraded from revision 0007 to {HEAD}" in cli("init").stdout
    assert asyncio.run(_sql(empty_database, ["SELECT paused_until FROM customers"])) == [(None,)]
    assert "1 reminders would be sent" in cli("send --dry-run --as-of 2026-12-04").stdout
    asyncio.run(_sql(empty_database, ["UPDATE customers SET paused_until = '2026-12-18'"]))
    out = cli("send --dry-run --as-of 2026-12-04").stdout
    assert "paused: 1 customers replied to a reminder (INT01)" in out
    assert "0 reminders would be sent" in out
    assert "1 reminders would be sent" in cli("send --dry-run --as-of 2026-12-19").stdout
