"""docs/deploy.md agrees with the unit it installs and the commands it names."""

from __future__ import annotations

import re
from pathlib import Path

import click
from helpers import ROOT, directive

from relances.daemon.cli.main import main
from relances.daemon.config import DaemonSettings
from relances.daemon.service.locks import AlreadyRunning, SingleInstanceLock

DOC = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")


def _code() -> str:
    """The code of the page: fenced blocks and inline spans."""
    blocks = re.findall(r"```[a-z]*\n(.*?)```", DOC, flags=re.S)
    spans = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", DOC, flags=re.S))
    return "\n".join(blocks + spans)


def test_every_command_shown_exists() -> None:
    # "relances relances status": the wrapper then the command, hence the lookahead.
    shown = set(re.findall(r"\brelances(?: -v+)? (?=([a-z][a-z-]+))", _code()))
    shown.discard("relances")
    assert {"daemon", "status", "init", "check-config", "send"} <= shown
    unknown = sorted(shown - set(main.list_commands(click.Context(main))))
    assert not unknown, f"deploy.md shows commands that do not exist: {unknown}"


def test_the_unit_values_quoted_are_the_units() -> None:
    assert f"`TimeoutStopSec={directive('TimeoutStopSec')}`" in DOC
    assert f"`WatchdogSec={directive('WatchdogSec')}`" in DOC
    assert f"`{directive('ExecStart')}`" in " ".join(DOC.split())
    assert "`RELANCES_USER=relances-daemon`" in DOC
    assert "Environment=RELANCES_USER=relances-daemon" in (ROOT / "deploy" / "relances.service").read_text()


def test_the_grace_period_and_watchdog_figures_are_the_defaults() -> None:
    grace = DaemonSettings().grace_period
    assert f"`daemon.grace_period` seconds ({grace:g} by default)" in " ".join(DOC.split())
    assert f"every {int(directive('WatchdogSec')) // 2} seconds" in DOC


def test_the_refusal_quoted_is_the_one_a_second_daemon_gets(tmp_path: Path) -> None:
    database = tmp_path / "relances.db"
    with SingleInstanceLock(database):
        try:
            SingleInstanceLock(database).acquire()
        except AlreadyRunning as exc:
            message = str(exc)
    wording = message.split(str(database))[0]
    assert f"relances: error: {wording}/var/lib/relances/relances.db (pid " in DOC
