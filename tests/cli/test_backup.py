"""``relances backup FILE``: SQLite's online backup, while another connection writes."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from helpers import SAMPLE, Cli, write_settings

SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
POSTGRESQL = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


def numbers(database: Path) -> list[str]:
    with sqlite3.connect(database) as db:
        return [row[0] for row in db.execute("SELECT number FROM invoices ORDER BY number")]


@SQLITE
def test_the_copy_holds_what_was_committed_and_nothing_of_an_open_transaction(
        seeded: Cli, database_url: str, tmp_path: Path) -> None:
    database = Path(database_url.split("///", 1)[1])
    writer = sqlite3.connect(database, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")  # what was committed stays in the WAL
    writer.execute("UPDATE invoices SET label = 'committed' WHERE number = 'COD_F1023'")
    writer.execute("BEGIN IMMEDIATE")  # a writer in the middle of its transaction
    writer.execute("UPDATE invoices SET number = 'UNCOMMITTED' WHERE number = 'COD_F1026'")
    try:
        copy = tmp_path / "copie.db"
        out = seeded(["backup", str(copy)]).stdout
        assert out.startswith(f"{database} → {copy}: ") and out.rstrip().endswith("checked")
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert numbers(copy) == ["COD_F1023", "COD_F1026"]
    with sqlite3.connect(copy) as db:
        assert db.execute("SELECT label FROM invoices WHERE number = 'COD_F1023'").fetchone() == (
            "committed",)
        assert db.execute("PRAGMA journal_mode").fetchone() == ("delete",)  # one whole file
    assert not list(tmp_path.glob(".copie.db.*"))  # no partial copy left behind

    # The copy is a database Relances opens as it is.
    restored = write_settings(tmp_path / "restored.yaml",
                              {"database.url": f"sqlite+aiosqlite:///{copy}"})
    listed = json.loads(Cli(restored)(["list", "--format", "json", "--as-of", "2025-06-01"]).stdout)
    assert {row["invoice_number"] for row in listed} == {"COD_F1023", "COD_F1026"}


@SQLITE
def test_an_existing_file_is_kept_unless_forced(seeded: Cli, tmp_path: Path) -> None:
    copy = tmp_path / "copie.db"
    copy.write_text("yesterday's copy\n", encoding="utf-8")
    result = seeded(["backup", str(copy)], ok=False)
    assert (result.exit_code, result.stderr) == (
        1, f"relances: error: {copy}: already exists (--force replaces it)\n")
    assert copy.read_text(encoding="utf-8") == "yesterday's copy\n"
    seeded(["backup", "--force", str(copy)])
    assert numbers(copy) == ["COD_F1023", "COD_F1026"]


@SQLITE
def test_a_copy_into_a_missing_folder_is_one_line(seeded: Cli, tmp_path: Path) -> None:
    result = seeded(["backup", str(tmp_path / "nowhere" / "copie.db")], ok=False)
    assert result.exit_code == 1
    assert result.stderr == (f"relances: error: {tmp_path / 'nowhere' / 'copie.db'}: the folder "
                             f"{tmp_path / 'nowhere'} does not exist\n")


@POSTGRESQL
def test_on_postgresql_it_says_how_pg_dump_does_it(cli: Cli, database_url: str,
                                                   tmp_path: Path) -> None:
    result = cli(["backup", str(tmp_path / "copie.dump")], ok=False)
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert "pg_dump --format=custom --file" in result.stderr
    assert "pg_restore" in result.stderr
    assert not (tmp_path / "copie.dump").exists()
    imported = cli(["import", "customers", str(SAMPLE / "customers.csv")])
    assert imported.exit_code == 0  # the database was not touched
