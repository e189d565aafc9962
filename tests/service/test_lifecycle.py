"""``relances daemon`` as systemd runs it: a process, signals, ``$NOTIFY_SOCKET``."""

from __future__ import annotations

import datetime as dt
import itertools
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from daemon_helpers import (
    RELANCES,
    Daemon,
    NotifySocket,
    daemon_settings,
    history,
    invoices_tsv,
    ledger,
    number_of,
    reminder,
    retrying,
    states,
    wait_until,
)
from servers import SmtpServer, free_port, smtp_server, tls_files  # noqa: F401 - fixtures

pytestmark = pytest.mark.timeout(180)

GRACE = 10


def today() -> dt.date:
    return dt.datetime.now(ZoneInfo("Europe/Paris")).date()


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[NotifySocket]:
    sock = NotifySocket(tmp_path / "notify")
    yield sock
    sock.close()


def archive_settings(tmp_path: Path, database_url: str) -> Path:
    return daemon_settings(tmp_path / "settings.yaml", database_url, ["archive"], {},
                           quick=True, grace_period=GRACE)


def test_starts_sends_what_is_due_and_stops_on_sigterm(
        tmp_path: Path, database_url: str, notify: NotifySocket) -> None:
    settings = archive_settings(tmp_path, database_url)
    ledger(settings, invoices_tsv(tmp_path / "invoices.tsv", 3))
    with Daemon(settings, tmp_path / "daemon.log", notify=notify) as daemon:
        ready = notify.wait_for("READY=1")
        assert any(f.startswith("STATUS=started on ") for f in ready)
        wait_until(lambda: states(database_url)["sent"] == 3, 60, "3 reminders sent")
        letters = sorted(p.name for p in (tmp_path / "letters").glob("*.pdf"))
        assert [name.split("_", 1)[1] for name in letters] == [
            f"K{n:04d}_K-F{n:04d}_relance-1.pdf" for n in (1, 2, 3)]
        for n in (1, 2, 3):
            row = reminder(database_url, number_of("K", n))
            assert (row["sent_channel"], row["last_reminded_on"], row["last_reminded_level"]) \
                == ("archive", today(), 1)
            assert history(database_url, number_of("K", n))[-1] == "Relance niveau 1 (Archive)"
        wait_until(lambda: any("idle; last dispatch: 3 queued; 3 sent" in s
                               for s in notify.statuses()), 30, "the dispatch status line")

        daemon.signal(signal.SIGTERM)
        asked = time.monotonic()
        stopping = notify.wait_for("STOPPING=1", GRACE)
        assert daemon.wait(GRACE) == 0
        assert time.monotonic() - asked < GRACE
        assert stopping[0] == "STOPPING=1"
        assert "relances daemon stopped" in daemon.log
        # Its render workers went with it.
        wait_until(lambda: not daemon.group_alive(), 10, "the render workers to exit")


def test_sighup_refuses_invalid_settings_and_applies_valid_ones(
        tmp_path: Path, notify: NotifySocket, smtp_server: SmtpServer) -> None:
    """The daemon starts with an SMTP port where nothing listens: the letter
    waits for a retry.  An invalid file on SIGHUP changes nothing (the next
    retries still go to the dead port); a valid one points the channel at
    the live server, and the next retry sends the letter there.
    """
    url = f"sqlite+aiosqlite:///{tmp_path / 'data' / 'relances.db'}"
    dead = smtp_server.channel_options(port=free_port())
    settings = daemon_settings(tmp_path / "settings.yaml", url, ["email"], {"email": dead},
                               quick=True, retry_base_seconds=1, retry_max_seconds=2,
                               max_attempts=50)
    original = settings.read_text(encoding="utf-8")
    ledger(settings, invoices_tsv(tmp_path / "invoices.tsv", 1))
    number = number_of("K", 1)
    with Daemon(settings, tmp_path / "daemon.log", notify=notify) as daemon:
        notify.wait_for("READY=1")
        wait_until(lambda: retrying(url, number), 60, "a first failed attempt")

        settings.write_text(original.replace("lease_seconds: 10", "lease_seconds: 1"),
                            encoding="utf-8")
        daemon.signal(signal.SIGHUP)
        daemon.wait_for_log("reload refused, the running settings stay in force")
        assert "daemon.lease_seconds" in daemon.log and "settings.yaml:" in daemon.log
        attempts = reminder(url, number)["attempts"]
        wait_until(lambda: retrying(url, number, attempts + 2), 30,
                   "two more attempts with the settings in force")
        assert daemon.process.poll() is None
        assert any("STATUS=reload refused: settings invalid" in f for f in notify.statuses())
        assert smtp_server.handler.messages == []
        assert reminder(url, number)["last_reminded_on"] is None

        data = yaml.safe_load(original)
        data["channels"]["email"] = smtp_server.channel_options()
        settings.write_text(yaml.safe_dump(data), encoding="utf-8")
        daemon.signal(signal.SIGHUP)
        daemon.wait_for_log("settings and templates reloaded")
        wait_until(lambda: reminder(url, number)["state"] == "sent", 30, "the letter sent")
        (received,) = smtp_server.handler.messages
        assert received.rcpt_tos == ["compta1@client1.example"]
        assert reminder(url, number)["last_reminded_on"] == today()
        assert any("STATUS=settings reloaded" in f for f in notify.statuses())
        assert daemon.stop() == 0


def test_a_second_daemon_on_the_same_sqlite_file_is_refused(
        tmp_path: Path, notify: NotifySocket) -> None:
    database = tmp_path / "data" / "relances.db"
    settings = archive_settings(tmp_path, f"sqlite+aiosqlite:///{database}")
    ledger(settings, invoices_tsv(tmp_path / "invoices.tsv", 1))
    with Daemon(settings, tmp_path / "daemon.log", notify=notify) as first:
        notify.wait_for("READY=1")
        second = subprocess.run([str(RELANCES), "--config", str(settings), "daemon"],
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 1
        assert second.stderr.splitlines()[-1] == (
            f"relances: error: another relances daemon is already running on {database} "
            f"(pid {first.pid})")
        assert "Traceback" not in second.stderr
        assert first.process.poll() is None
        assert first.stop() == 0


def test_once_does_one_pass_and_exits(tmp_path: Path, database_url: str,
                                      notify: NotifySocket) -> None:
    settings = archive_settings(tmp_path, database_url)
    ledger(settings, invoices_tsv(tmp_path / "invoices.tsv", 4))
    with Daemon(settings, tmp_path / "daemon.log", once=True, notify=notify) as daemon:
        assert daemon.wait(120) == 0
    assert states(database_url) == {"sent": 4}
    assert len(list((tmp_path / "letters").glob("*.pdf"))) == 4
    log = daemon.log
    assert "escalation: 0 invoices escalated" in log
    assert "dispatch: 4 queued; 4 sent (4 by archive)" in log
    assert "relances daemon stopped" in log
    notify.wait_for("READY=1", 5)
    notify.wait_for("STOPPING=1", 5)


def test_once_stops_cleanly_on_sigterm(tmp_path: Path, notify: NotifySocket) -> None:
    """A cron or timer run stopped mid-way: like the service, it stops
    claiming, finishes what is in flight, hands back the rest and takes its
    render workers with it (killed outright, they would outlive it for good).
    """
    url = f"sqlite+aiosqlite:///{tmp_path / 'data' / 'relances.db'}"
    settings = archive_settings(tmp_path, url)
    ledger(settings, invoices_tsv(tmp_path / "invoices.tsv", 300))
    with Daemon(settings, tmp_path / "daemon.log", once=True, notify=notify) as daemon:
        daemon.wait_for_log("sent by archive", 60)
        daemon.signal(signal.SIGTERM)
        notify.wait_for("STOPPING=1", GRACE)
        assert daemon.wait(GRACE + 5) == 0
        wait_until(lambda: not daemon.group_alive(), 10, "the render workers to exit")
    assert "relances daemon stopped" in daemon.log
    counts = states(url)
    assert 0 < counts["sent"] < 300
    assert counts["sending"] == 0  # nothing left leased to a process that is gone
    assert counts["sent"] + counts["pending"] == 300
    assert len(list((tmp_path / "letters").glob("*.pdf"))) == counts["sent"]


WATCHDOG_SECONDS = 4  # systemd's WatchdogSec= for this run; the daemon pings every 2 s


def watchdog_pings(notify: NotifySocket, done: Callable[[], bool], timeout: float) -> list[float]:
    """When each WATCHDOG=1 datagram arrived, read as it comes, until ``done()``
    and at least four have come."""
    arrivals: list[float] = []
    deadline = time.monotonic() + timeout
    while len(arrivals) < 4 or not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"not done, or fewer than four WATCHDOG=1, within {timeout:g} s; "
                                 f"received {notify.received}")
        notify.sock.settimeout(0.1)
        try:
            fields = notify.sock.recv(4096).decode().split("\n")
        except TimeoutError:
            continue
        notify.received.append(fields)
        if "WATCHDOG=1" in fields:
            assert fields == ["WATCHDOG=1"]
            arrivals.append(time.monotonic())
    return arrivals


def test_the_watchdog_is_pinged_while_the_daemon_works_and_idles(
        tmp_path: Path, notify: NotifySocket, monkeypatch: pytest.MonkeyPatch) -> None:
    """systemd sets $WATCHDOG_USEC and kills the service when no WATCHDOG=1
    comes within it: the daemon keeps pinging in time, through the catch-up
    pass that sends its letters and after it."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'data' / 'relances.db'}"
    settings = archive_settings(tmp_path, url)
    ledger(settings, invoices_tsv(tmp_path / "invoices.tsv", 20))
    monkeypatch.setenv("WATCHDOG_USEC", str(WATCHDOG_SECONDS * 1_000_000))
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    with Daemon(settings, tmp_path / "daemon.log", notify=notify) as daemon:
        notify.wait_for("READY=1")
        notify.drain()  # pings already queued: when they arrived is not known
        arrivals = watchdog_pings(notify, lambda: states(url)["sent"] == 20, 120)
        gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
        # A reading may lag its datagram by the 0.1 s of a wait and a look at the outbox.
        assert max(gaps) < WATCHDOG_SECONDS, gaps  # systemd would have killed it otherwise
        assert daemon.process.poll() is None
        assert daemon.stop() == 0
