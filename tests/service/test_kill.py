"""``kill -9`` at random points of a 1,000-letter run loses nothing.

The issue's claim: a daemon killed at any instant and restarted loses
nothing, and a reminder is sent twice only if the kill fell between the
channel's acceptance and the commit that records it (the resend carries
the same Message-ID).  The test kills the daemon at seeded random instants
of a 1,000-letter run against a real SMTP server (aiosmtpd with STARTTLS
and AUTH, in this process, so it outlives every daemon), restarting it each
time, then lets a last daemon finish and counts what arrived per
Message-ID: none missing, and no more duplicates than kills.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import random
import sqlite3
import time
from collections import Counter
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from daemon_helpers import (
    Daemon,
    daemon_settings,
    invoices_tsv,
    ledger,
    message_ids,
    number_of,
    query,
    smtp_controller,
    states,
    wait_until,
)
from servers import (  # noqa: F401 - fixtures
    SMTP_PASSWORD,
    RecordingHandler,
    SmtpServer,
    free_port,
    smtp_server,
    tls_files,
)
from sqlalchemy import func, select

from relances.channels.smtp import message_id_for
from relances.daemon.models import HistoryEntry, Invoice

LETTERS = 1000
KILLS = 10
SEED = 5  # the number: the same instants on every run
SENDER_DOMAIN = "entreprise.example"  # smtp_server.channel_options()'s from_address


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_kill_9_at_random_points_of_a_1000_letter_run(tmp_path: Path,
                                                      smtp_server: SmtpServer) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'data' / 'relances.db'}"
    settings = daemon_settings(tmp_path / "settings.yaml", url, ["email"],
                               {"email": smtp_server.channel_options()}, quick=True,
                               lease_seconds=10, render_workers=1, batch_size=20)
    ledger(settings, invoices_tsv(tmp_path / "invoices.tsv", LETTERS))
    messages = smtp_server.handler.messages
    rng = random.Random(SEED)
    started = time.monotonic()

    # (phase, seconds, messages arrived so far) at each kill
    kills: list[tuple[str, float, int]] = []
    for n in range(KILLS):
        daemon = Daemon(settings, tmp_path / f"daemon-{n}.log")
        before = len(messages)
        try:
            if rng.random() < 0.2:
                # Anywhere in its start: settings, schema, escalation, queueing.
                phase, delay = "start", rng.uniform(0.5, 6.0)
            else:
                # Mid-run: once this daemon's letters are arriving.
                wait_until(lambda: len(messages) > before, 60, f"daemon {n} sending")  # noqa: B023
                phase, delay = "sending", rng.uniform(0.0, 3.0)
            time.sleep(delay)
            assert daemon.process.poll() is None, daemon.log
        finally:
            daemon.kill()
        kills.append((phase, delay, len(messages)))
        assert states(url)["sent"] < LETTERS, f"the run ended before kill {n + 1}: {kills}"
    killed_at = time.monotonic()

    with Daemon(settings, tmp_path / "daemon-last.log") as last:
        wait_until(lambda: states(url)["sent"] == LETTERS, 400, "every reminder sent",
                   interval=1)
        assert last.stop() == 0
    finished = time.monotonic()

    keys = [f"letter:{number_of('K', n)}:1:email" for n in range(1, LETTERS + 1)]
    expected = {message_id_for(key, SENDER_DOMAIN) for key in keys}
    arrived = message_ids(messages)
    missing = expected - set(arrived)
    assert not missing, f"{len(missing)} reminders never arrived"
    assert set(arrived) == expected
    assert Counter(m.rcpt_tos[0] for m in messages) == Counter(
        {f"compta{n}@client{n}.example": arrived[message_id_for(key, SENDER_DOMAIN)]
         for n, key in enumerate(keys, 1)})
    duplicates = sum(count - 1 for count in arrived.values())
    print(f"\n{LETTERS} letters, {KILLS} kills "
          f"{[f'{p} +{d:.1f}s: {m} arrived' for p, d, m in kills]}; {len(messages)} messages, "
          f"{duplicates} duplicates; {killed_at - started:.0f} s of kills, "
          f"{finished - killed_at:.0f} s for the last daemon")
    assert duplicates <= KILLS

    # Stamped once each, on the day it left, with one history line per letter.
    today = dt.datetime.now(ZoneInfo("Europe/Paris")).date()
    assert query(url, select(Invoice.last_reminded_on, Invoice.last_reminded_level,
                             func.count()).group_by(Invoice.last_reminded_on,
                                                    Invoice.last_reminded_level)) \
        == [(today, 1, LETTERS)]
    per_invoice = query(url, select(func.count()).select_from(HistoryEntry)
                        .where(HistoryEntry.event == "sent").group_by(HistoryEntry.invoice_id))
    assert sorted(per_invoice) == [(1,)] * LETTERS
    assert states(url) == {"sent": LETTERS}


class LagRecorder(RecordingHandler):
    """Notes, as each message arrives, how many accepted before it are not yet
    recorded as sent in the daemon's SQLite database.
    """

    def __init__(self, database: Path) -> None:
        super().__init__()
        self.database = database
        self.lags: list[int] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with contextlib.closing(sqlite3.connect(self.database, timeout=30)) as db:
            (recorded,) = db.execute("SELECT count(*) FROM reminders WHERE state = 'sent'").fetchone()
        self.lags.append(len(self.messages) - recorded)
        return await super().handle_DATA(server, session, envelope)


@pytest.mark.timeout(180)
def test_a_letter_leaves_only_once_the_one_before_is_recorded(
        tmp_path: Path, tls_files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """What bounds duplicates by kills: through one channel, at most one
    letter at a time is accepted by the server and not yet recorded, so a
    kill can leave at most one letter to be sent again.
    """
    monkeypatch.setenv("RELANCES_TEST_SMTP_PASSWORD", SMTP_PASSWORD)
    database = tmp_path / "data" / "relances.db"
    handler = LagRecorder(database)
    port = free_port()
    server = SmtpServer("127.0.0.1", port, handler, tls_files[0], "starttls")
    controller = smtp_controller(handler, port, tls_files)
    try:
        settings = daemon_settings(tmp_path / "settings.yaml", f"sqlite+aiosqlite:///{database}",
                                   ["email"], {"email": server.channel_options()}, quick=True,
                                   render_workers=2, batch_size=50)
        ledger(settings, invoices_tsv(tmp_path / "invoices.tsv", 60))
        with Daemon(settings, tmp_path / "daemon.log", once=True) as daemon:
            assert daemon.wait(120) == 0
    finally:
        controller.stop()
    assert len(handler.messages) == 60
    assert max(handler.lags) == 0, f"unrecorded letters when the next one arrived: {handler.lags}"
