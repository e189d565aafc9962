"""Revision 0009 (promises to pay) upgrades a 0008 database.

A 0008 database's customer has made no promise after ``relances init``; a
promise can then be recorded and holds the reminders, on SQLite and on
PostgreSQL.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

from helpers import Cli, write_settings
from test_migrations import HEAD, empty_database  # noqa: F401 - fixture
from test_migrations_0008 import RELEASE_0007, _sql


def test_a_0008_database_upgrades_and_a_promise_holds_reminders(
        empty_database: str, tmp_path: Path) -> None:  # noqa: F811
    # What 0007 wrote is what 0008 holds: 0008 added only nullable columns.
    asyncio.run(_sql(empty_database, RELEASE_0007, revision="0008"))
    asyncio.run(_sql(empty_database, ["UPDATE customers SET paused_until = NULL"]))
    cli = Cli(write_settings(tmp_path / "settings.yaml", {"database.url": empty_database}))
    assert f"database upgraded from revision 0008 to {HEAD}" in cli("init").stdout
    assert asyncio.run(_sql(empty_database, ["SELECT promised_on, promise_until FROM customers"])) \
        == [(None, None)]
    today = dt.datetime.now(ZoneInfo("Europe/Paris")).date()
    assert "1 reminders would be sent" in cli(["send", "--dry-run"]).stdout
    cli(["note", "INT01", "promis", "--promise", (today + dt.timedelta(days=5)).isoformat()])
    assert "0 reminders would be sent" in cli(["send", "--dry-run"]).stdout
