"""Revision 0010 (a level's letter joins the invoice's copy as set on the
screen) upgrades a 0009 database: the settings apply until a person sets a
level, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

from helpers import Cli, write_settings
from test_migrations import HEAD, empty_database  # noqa: F401 - fixture
from test_migrations_0008 import RELEASE_0007, _sql


def test_a_0009_database_upgrades_and_a_level_set_on_the_screen_wins(
        empty_database: str, tmp_path: Path) -> None:  # noqa: F811
    asyncio.run(_sql(empty_database, RELEASE_0007, revision="0009"))
    cli = Cli(write_settings(tmp_path / "settings.yaml", {"database.url": empty_database}))
    assert f"database upgraded from revision 0009 to {HEAD}" in cli("init").stdout
    assert asyncio.run(_sql(empty_database, ["SELECT count(*) FROM letter_options"])) == [(0,)]
    out = tmp_path / "l.pdf"
    assert "the copy to attach is missing" in cli(
        ["preview", "F-0007", "--level", "3", "-o", str(out)], ok=False).stderr
    asyncio.run(_sql(empty_database, [
        "INSERT INTO letter_options (id, policy, level, attach_invoice, updated_by, updated_at) "
        "VALUES (1, 'default', 3, :no, 'admin', :now)"]))
    cli(["preview", "F-0007", "--level", "3", "-o", str(out)])
    assert out.read_bytes().startswith(b"%PDF")
