"""The minimum delay between two contacts with one customer, whatever the
invoice (``customers.min_contact_days``): what falls inside it waits."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

from helpers import SAMPLE, Cli, write_settings


def _cli(tmp_path: Path, database_url: str, days: int) -> Cli:
    cli = Cli(write_settings(tmp_path / "settings.yaml", {
        "database.url": database_url, "customers.min_contact_days": days,
        "channels.archive.folder": str(tmp_path / "letters")}))
    cli("init")
    cli(["import", "customers", str(SAMPLE / "customers.csv")])
    cli(["import", "invoices", str(SAMPLE / "seed.tsv")])
    return cli


def _day(days: int) -> str:
    today = dt.datetime.now(ZoneInfo("Europe/Paris")).date()
    return (today + dt.timedelta(days=days)).isoformat()


def _would(cli: Cli, as_of: str) -> str:
    return cli(["send", "--dry-run", "--as-of", as_of]).stdout.splitlines()[-1]


def test_a_customer_reminded_today_waits_a_week_for_the_next(tmp_path: Path,
                                                             database_url: str) -> None:
    cli = _cli(tmp_path, database_url, 7)
    cli(["set-level", "COD_F1023", "1"])
    cli(["send"])  # today: DAN01's level-1 letter leaves
    cli(["set-level", "COD_F1023", "2"])
    # The same day is the same contact: level 2 may go with it.
    assert _would(cli, _day(0)).startswith("dry run: 1 reminders")
    for days in range(1, 7):
        assert _would(cli, _day(days)).startswith("dry run: 0 reminders"), days
    assert _would(cli, _day(7)).startswith("dry run: 1 reminders")
    # Another customer is not held by DAN01's letter.
    cli(["set-level", "COD_F1026", "1"])
    assert _would(cli, _day(3)).startswith("dry run: 1 reminders")
    # A person may still send it.
    assert "1 sent" in cli(["send", "--invoice", "COD_F1023", "--force",
                            "--as-of", _day(2)]).stdout


def test_no_wait_when_it_is_off(tmp_path: Path, database_url: str) -> None:
    cli = _cli(tmp_path, database_url, 0)
    cli(["set-level", "COD_F1023", "1"])
    cli(["send"])
    cli(["set-level", "COD_F1023", "2"])
    assert _would(cli, _day(1)).startswith("dry run: 1 reminders")
