"""``relances daemon`` with ``web.enabled``: the screen in the daemon's own
event loop, beside escalation and dispatch; signals stay the daemon's."""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path

import pytest
from daemon_helpers import Daemon, daemon_settings, invoices_tsv, ledger, states, wait_until
from servers import free_port
from web.support import PASSWORD, relances

pytestmark = pytest.mark.timeout(180)


def _settings(tmp_path: Path, database_url: str, port: int) -> Path:
    return daemon_settings(tmp_path / "settings.yaml", database_url, ["archive"], {},
                           quick=True, more={"web.enabled": True, "web.port": port})


def test_the_daemon_serves_the_screen_and_stops_it_on_sigterm(tmp_path: Path,
                                                              database_url: str) -> None:
    port = free_port()
    settings = _settings(tmp_path, database_url, port)
    cli = ledger(settings, invoices_tsv(tmp_path / "invoices.tsv", 2))
    relances(cli, ["user", "add", "claire", "--role", "lecture"], stdin=PASSWORD + "\n")
    with Daemon(settings, tmp_path / "daemon.log") as daemon:
        daemon.wait_for_log(f"web screen at http://127.0.0.1:{port}/relances")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=10) as answer:
            assert answer.status == 200 and "Connexion" in answer.read().decode()
        # The service goes on beside it: what was due left.
        wait_until(lambda: states(database_url)["sent"] == 2, 60, "2 reminders sent")
        assert daemon.stop() == 0
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass  # the screen stopped with the daemon


def test_a_port_the_screen_cannot_open_stops_the_start(tmp_path: Path,
                                                       database_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = _settings(tmp_path, database_url, port)
        ledger(settings, invoices_tsv(tmp_path / "invoices.tsv", 1))
        with Daemon(settings, tmp_path / "daemon.log") as daemon:
            assert daemon.wait(60) != 0
            assert f"web: cannot serve the screen on 127.0.0.1:{port}" in daemon.log
            assert "address already in use" in daemon.log.lower()
