"""Faults injected into real servers while the daemon sends.

Each test runs ``relances daemon`` with a one-invoice ledger, breaks the
channel for real (SMTP replies, an SMTP server that is down, a stopped
CUPS queue, a full file system), checks that nothing was stamped that did
not leave and that the history says why, then repairs the fault and waits
for the eventual outcome: the daemon retries on its own schedule, kept in
the outbox row.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from daemon_helpers import (
    Daemon,
    daemon_settings,
    history,
    invoices_tsv,
    ledger,
    number_of,
    queued,
    reminder,
    retrying,
    smtp_controller,
    wait_until,
)
from helpers import unavailable
from servers import (  # noqa: F401 - fixtures
    SMTP_PASSWORD,
    CupsServer,
    RecordingHandler,
    SmtpServer,
    cups_server,
    free_port,
    pdf_text,
    smtp_server,
    tls_files,
)

pytestmark = pytest.mark.timeout(180)

NUMBER = number_of("K", 1)  # the one invoice of every ledger here
EMAIL = "compta1@client1.example"


def today() -> dt.date:
    return dt.datetime.now(ZoneInfo("Europe/Paris")).date()


def one_invoice(tmp_path: Path, database_url: str, level1: list[str],
                channels: dict[str, object], **daemon: object) -> Path:
    settings = daemon_settings(tmp_path / "settings.yaml", database_url, level1, channels,
                               quick=True, **daemon)
    ledger(settings, invoices_tsv(tmp_path / "invoices.tsv", 1))
    return settings


def left(url: str) -> bool:
    """Whether the letter is recorded as sent."""
    row = queued(url, NUMBER)
    return row is not None and row["state"] == "sent"


def failures(url: str) -> list[str]:
    return [line for line in history(url, NUMBER) if line.startswith("Échec")]


def assert_waiting_unstamped(url: str, *reasons: str) -> list[str]:
    """The letter waits for a retry, unstamped; the history says why. Its failure lines."""
    row = reminder(url, NUMBER)
    assert row["state"] == "pending", row
    assert (row["last_reminded_on"], row["last_reminded_level"]) == (None, None)
    lines = failures(url)
    assert lines, history(url, NUMBER)
    for line in lines:
        assert "nouvel essai dans" in line, line
        for reason in reasons:
            assert reason in line, line
    assert not any(line.startswith("Relance niveau") for line in history(url, NUMBER))
    return lines


def assert_sent(url: str, channel: str, label: str) -> dict[str, object]:
    row = reminder(url, NUMBER)
    assert (row["state"], row["sent_channel"]) == ("sent", channel)
    assert (row["last_reminded_on"], row["last_reminded_level"]) == (today(), 1)
    assert history(url, NUMBER)[-1] == f"Relance niveau 1 ({label})"
    return row


@pytest.mark.parametrize("reply", ["421 4.3.2 Service not available, closing channel",
                                   "451 4.3.0 Temporary local problem, try again later"])
def test_smtp_4xx_is_retried_later_then_sent(
        tmp_path: Path, database_url: str, smtp_server: SmtpServer, reply: str) -> None:
    code = reply.split()[0]
    settings = one_invoice(tmp_path, database_url, ["email"],
                           {"email": smtp_server.channel_options()}, retry_base_seconds=2)
    smtp_server.handler.data_replies.extend([reply, reply])
    with Daemon(settings, tmp_path / "daemon.log") as daemon:
        wait_until(lambda: failures(database_url), 60, "the first refusal in the history")
        # Read between the refusal and the retry it scheduled (at least 1.5 s later).
        (first,) = assert_waiting_unstamped(database_url, code)
        assert first.startswith("Échec Relance niveau 1 (Email) : SMTP")
        assert smtp_server.handler.messages == []

        wait_until(lambda: left(database_url), 60, "the letter sent")
        assert daemon.stop() == 0
    row = assert_sent(database_url, "email", "Email")
    assert row["attempts"] == 3
    assert len(failures(database_url)) == 2
    (received,) = smtp_server.handler.messages
    assert received.rcpt_tos == [EMAIL]
    assert str(received.message["Message-ID"]) == row["reference"]


def test_smtp_550_falls_back_to_the_printer(
        tmp_path: Path, smtp_server: SmtpServer, cups_server: CupsServer) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'data' / 'relances.db'}"
    settings = one_invoice(tmp_path, url, ["email", "print"], {
        "email": smtp_server.channel_options(),
        "print": {"printer": cups_server.printer, "server": cups_server.server}})
    smtp_server.handler.data_replies.append("550 5.1.1 <compta1@client1.example>: no such user")
    before = cups_server.idle_pdfs()
    with Daemon(settings, tmp_path / "daemon.log") as daemon:
        wait_until(lambda: left(url), 60, "the letter sent")
        assert daemon.stop() == 0
    printed = pdf_text(cups_server.wait_for_pdf(before).read_bytes())
    assert "CLIENT 0001" in printed and NUMBER in printed
    assert smtp_server.handler.messages == []
    row = assert_sent(url, "print", "Courrier")
    assert row["channel_index"] == 1
    (refused,) = failures(url)
    assert refused.startswith("Échec Relance niveau 1 (Email) : SMTP")
    assert "550" in refused and refused.endswith("— envoi par print")


def test_smtp_server_down_for_a_while(
        tmp_path: Path, tls_files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """The server stops; the letter waits, unstamped, through several
    attempts; the server comes back on the same port and the letter leaves.
    """
    monkeypatch.setenv("RELANCES_TEST_SMTP_PASSWORD", SMTP_PASSWORD)
    url = f"sqlite+aiosqlite:///{tmp_path / 'data' / 'relances.db'}"
    handler = RecordingHandler()
    port = free_port()
    server = SmtpServer("127.0.0.1", port, handler, tls_files[0], "starttls")
    smtp_controller(handler, port, tls_files).stop()  # it served here, and went down
    settings = one_invoice(tmp_path, url, ["email"], {"email": server.channel_options()},
                           retry_base_seconds=1, retry_max_seconds=2)
    with Daemon(settings, tmp_path / "daemon.log") as daemon:
        wait_until(lambda: retrying(url, NUMBER, attempts=3), 60, "three failed attempts")
        assert_waiting_unstamped(url, f"SMTP 127.0.0.1:{port}")
        assert "Connect call failed" in failures(url)[0]

        controller = smtp_controller(handler, port, tls_files)
        try:
            wait_until(lambda: left(url), 60, "the letter sent")
        finally:
            controller.stop()
        assert daemon.stop() == 0
    assert_sent(url, "email", "Email")
    (received,) = handler.messages
    assert received.rcpt_tos == [EMAIL]


def _cups(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, env=dict(os.environ, LC_ALL="C"))


def test_stopped_print_queue_waits_until_restarted(
        tmp_path: Path, cups_server: CupsServer) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'data' / 'relances.db'}"
    queue = cups_server.stopped_printer
    settings = one_invoice(tmp_path, url, ["print"],
                           {"print": {"printer": queue, "server": cups_server.server}},
                           retry_base_seconds=1, retry_max_seconds=2)
    before = cups_server.idle_pdfs()
    with Daemon(settings, tmp_path / "daemon.log") as daemon:
        wait_until(lambda: retrying(url, NUMBER, attempts=2), 60, "two failed attempts")
        (first, *_) = assert_waiting_unstamped(url, f"printer {queue} is stopped", "paper jam")
        assert first.startswith("Échec Relance niveau 1 (Courrier) : ")
        assert cups_server.pdfs() == before  # no job was left waiting in the queue

        _cups("cupsenable", "-h", cups_server.server, queue)
        try:
            wait_until(lambda: left(url), 60, "the letter sent")
            printed = pdf_text(cups_server.wait_for_pdf(before).read_bytes())
        finally:
            _cups("cupsdisable", "-h", cups_server.server, "-r", "paper jam", queue)
        assert daemon.stop() == 0
    assert NUMBER in printed
    assert_sent(url, "print", "Courrier")


@pytest.fixture
def full_letters_folder(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """The archive folder on a 64 KiB tmpfs, filled up: (folder, filler file)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        unavailable("mounting a small tmpfs needs root")
    folder = tmp_path / "letters"
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        unavailable(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    filler = folder / "filler"
    try:
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
        try:
            while os.write(fd, b"\0" * 4096):
                pass
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        finally:
            os.close(fd)
        yield folder, filler
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_full_disk_for_the_archive(tmp_path: Path,
                                   full_letters_folder: tuple[Path, Path]) -> None:
    folder, filler = full_letters_folder
    url = f"sqlite+aiosqlite:///{tmp_path / 'data' / 'relances.db'}"
    settings = one_invoice(tmp_path, url, ["archive"], {}, retry_base_seconds=1,
                           retry_max_seconds=2)
    with Daemon(settings, tmp_path / "daemon.log") as daemon:
        wait_until(lambda: retrying(url, NUMBER, attempts=2), 60, "two failed attempts")
        assert_waiting_unstamped(url, f"cannot archive into {folder}", "No space left on device")
        assert sorted(p.name for p in folder.iterdir()) == ["filler"]  # no partial letter

        filler.unlink()
        wait_until(lambda: left(url), 60, "the letter sent")
        assert daemon.stop() == 0
    row = assert_sent(url, "archive", "Archive")
    (letter,) = folder.iterdir()
    assert row["reference"] == str(letter)
    assert NUMBER in pdf_text(letter.read_bytes())
