"""Promises to pay: a customer's promise holds their reminders until its day
and the grace period; then the history says whether it was kept, and the
reminders resume."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from helpers import Cli


def _day(days: int) -> str:
    today = dt.datetime.now(ZoneInfo("Europe/Paris")).date()
    return (today + dt.timedelta(days=days)).isoformat()


def _would_send(cli: Cli, as_of: str) -> str:
    return cli(["send", "--dry-run", "--as-of", as_of]).stdout.splitlines()[-1]


def test_a_promise_holds_reminders_then_lapses_unkept(seeded: Cli) -> None:
    seeded(["set-level", "COD_F1023", "1"])
    out = seeded(["note", "DAN01", "au téléphone, virement prévu", "--promise", _day(10)]).stdout
    promised = dt.date.fromisoformat(_day(10)).strftime("%d/%m/%Y")
    until = dt.date.fromisoformat(_day(13)).strftime("%d/%m/%Y")
    assert f"DAN01: promise to pay on {promised} recorded; no reminder until {until}" in out
    card = seeded(["customer", "DAN01"]).stdout
    assert f"règlement promis pour le {promised}, relances suspendues jusqu'au {until}" in card
    assert f"Promesse de règlement pour le {promised} : au téléphone, virement prévu" in card
    assert _would_send(seeded, _day(13)).startswith("dry run: 0 reminders would be sent")
    assert _would_send(seeded, _day(14)).startswith("dry run: 1 reminders would be sent")
    # The escalation after the grace period ends the promise, not kept: COD_F1023 is unpaid.
    seeded(["escalate", "--as-of", _day(14)])
    card = seeded(["customer", "DAN01"]).stdout
    assert f"Promesse de règlement du {promised} non tenue : relances reprises" in card
    assert "règlement promis" not in card


def test_a_promise_kept_is_said_so(seeded: Cli) -> None:
    seeded(["note", "INT01", "", "--promise", _day(2)])
    seeded(["pay", "COD_F1026"])
    seeded(["escalate", "--as-of", _day(4)])  # still within the grace: nothing said yet
    assert "tenue" not in seeded(["customer", "INT01"]).stdout
    seeded(["escalate", "--as-of", _day(6)])
    assert "Promesse de règlement du " in seeded(["customer", "INT01"]).stdout
    assert "tenue" in seeded(["customer", "INT01"]).stdout
    assert "non tenue" not in seeded(["customer", "INT01"]).stdout


def test_a_promise_for_a_past_day_is_refused(seeded: Cli) -> None:
    result = seeded(["note", "DAN01", "x", "--promise", _day(-1)], ok=False)
    assert result.exit_code != 0
    assert "DAN01: a promise to pay is for a day to come" in result.stderr
    assert "Promesse" not in seeded(["customer", "DAN01"]).stdout
