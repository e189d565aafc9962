"""A claimed reminder's lease holds while it is in flight, and only its holder records it.

The channel is the email channel against a real SMTP server (aiosmtpd with
STARTTLS and AUTH) that holds the first message's DATA until the test lets
it go: a channel slower than the lease.  Two dispatchers share one
database, on SQLite and on PostgreSQL; in the last test one of them is a
``relances daemon`` process stalled with SIGSTOP, as a machine under
memory pressure or a paused VM stalls, for longer than its lease.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from daemon_helpers import (
    Daemon,
    daemon_settings,
    history,
    invoices_tsv,
    ledger,
    number_of,
    query,
    reminder,
    smtp_controller,
    wait_until,
)
from servers import SMTP_PASSWORD, RecordingHandler, SmtpServer, free_port, tls_files  # noqa: F401
from sqlalchemy import func, select

from relances.daemon.config import Settings, load_settings
from relances.daemon.dispatch import outbox
from relances.daemon.dispatch.run import Dispatcher, Summary
from relances.daemon.letters.pool import Renderer
from relances.daemon.models import Reminder
from relances.daemon.storage import App

pytestmark = pytest.mark.timeout(180)

NUMBER = number_of("K", 1)
EMAIL = "compta1@client1.example"


@dataclass
class HoldingHandler(RecordingHandler):
    """Holds the first message's DATA until ``release`` is set, then answers
    ``first_reply`` (or accepts it); later messages are taken at once.
    """

    holding: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    first_reply: str | None = None
    held: bool = False

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.held:
            return await super().handle_DATA(server, session, envelope)
        self.held = True
        self.holding.set()
        while not self.release.is_set():
            await asyncio.sleep(0.05)
        if self.first_reply is not None:
            return self.first_reply
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def slow_smtp(tls_files: tuple[Path, Path],
              monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpServer]:
    monkeypatch.setenv("RELANCES_TEST_SMTP_PASSWORD", SMTP_PASSWORD)
    handler = HoldingHandler()
    port = free_port()
    controller = smtp_controller(handler, port, tls_files)
    try:
        yield SmtpServer("127.0.0.1", port, handler, tls_files[0], "starttls")
    finally:
        handler.release.set()
        time.sleep(0.2)  # let the server close its sessions on its own loop (see servers.py)
        controller.stop()


def one_letter(tmp_path: Path, url: str, smtp: SmtpServer, **daemon: Any) -> Path:
    settings = daemon_settings(tmp_path / "settings.yaml", url, ["email"],
                               {"email": smtp.channel_options(timeout=120)}, quick=True, **daemon)
    ledger(settings, invoices_tsv(tmp_path / "invoices.tsv", 1))
    return settings


def with_lease(path: Path, seconds: int) -> Settings:
    """The settings with a lease shorter than ``daemon.lease_seconds`` accepts (10 s)."""
    settings = load_settings(path)
    return settings.model_copy(update={
        "daemon": settings.daemon.model_copy(update={"lease_seconds": seconds})})


def sent_lines(url: str) -> list[str]:
    return [line for line in history(url, NUMBER) if line.startswith("Relance niveau 1")]


def test_a_channel_slower_than_the_lease_sends_once(
        tmp_path: Path, database_url: str, slow_smtp: SmtpServer) -> None:
    """The first dispatcher's channel takes more than twice the lease; a
    second dispatcher runs meanwhile and finds nothing to take.
    """
    lease = 3
    settings = with_lease(one_letter(tmp_path, database_url, slow_smtp), lease)
    handler = slow_smtp.handler
    assert isinstance(handler, HoldingHandler)

    async def two_dispatchers() -> tuple[Summary, Summary]:
        first_app, second_app = App(settings=settings), App(settings=settings)
        try:
            async with first_app.sessions.begin() as session:
                (reminder_id,) = (await outbox.queue(session, settings, outbox.Request(),
                                                     user="tester")).ids
            async with Renderer(settings, workers=1) as renderer:
                first = Dispatcher(first_app, first_app.plugins, renderer, worker="first")
                second = Dispatcher(second_app, second_app.plugins, renderer, worker="second")
                running = asyncio.create_task(first.run())
                assert await asyncio.to_thread(handler.holding.wait, 60)
                await asyncio.sleep(2 * lease)  # the first claim's lease is long over
                other = await second.run()
                handler.release.set()
                return await running, other
        finally:
            await first_app.close()
            await second_app.close()

    first, second = asyncio.run(two_dispatchers())

    assert [m.rcpt_tos for m in handler.messages] == [[EMAIL]]
    assert (dict(first.sent), first.lost) == ({"email": 1}, 0)
    assert second.handled == 0 and second.lost == 0
    row = reminder(database_url, NUMBER)
    assert (row["state"], row["claimed_by"], row["attempts"]) == ("sent", "first", 1)
    assert row["reference"] == str(handler.messages[0].message["Message-ID"])
    assert sent_lines(database_url) == ["Relance niveau 1 (Email)"]


def test_a_dispatcher_claims_no_more_than_it_has_in_flight(
        tmp_path: Path, database_url: str, slow_smtp: SmtpServer) -> None:
    """Five letters, room for two at once: three stay pending, free for
    another daemon, while the channel holds the first.
    """
    path = daemon_settings(tmp_path / "settings.yaml", database_url, ["email"],
                           {"email": slow_smtp.channel_options(timeout=120)}, quick=True)
    ledger(path, invoices_tsv(tmp_path / "invoices.tsv", 5))
    settings = load_settings(path)
    handler = slow_smtp.handler
    assert isinstance(handler, HoldingHandler)

    async def while_the_first_is_held() -> tuple[list[tuple[Any, ...]], Summary]:
        app = App(settings=settings)
        try:
            async with app.sessions.begin() as session:
                await outbox.queue(session, settings, outbox.Request(), user="tester")
            async with Renderer(settings, workers=1) as renderer:
                dispatcher = Dispatcher(app, app.plugins, renderer, concurrency=2)
                running = asyncio.create_task(dispatcher.run())
                assert await asyncio.to_thread(handler.holding.wait, 60)
                async with app.sessions() as session:
                    seen = list((await session.execute(
                        select(Reminder.state, func.count()).group_by(Reminder.state)
                        .order_by(Reminder.state))).all())
                handler.release.set()
                return [tuple(row) for row in seen], await running
        finally:
            await app.close()

    seen, summary = asyncio.run(while_the_first_is_held())
    assert seen == [("pending", 3), ("sending", 2)]
    assert dict(summary.sent) == {"email": 5}
    assert len(handler.messages) == 5


def lease_until(url: str) -> dt.datetime | None:
    ((until,),) = query(url, select(Reminder.lease_until))
    if until is not None and until.tzinfo is None:
        until = until.replace(tzinfo=dt.UTC)
    return until


def test_a_late_retryable_failure_from_a_stale_holder_changes_nothing(
        tmp_path: Path, database_url: str, slow_smtp: SmtpServer) -> None:
    """A daemon stalls past its lease with the letter at the SMTP server;
    another dispatcher takes the letter over and sends it; then the server
    answers the stalled daemon 451.  The letter stays sent, stamped once,
    with no failure in its history.
    """
    handler = slow_smtp.handler
    assert isinstance(handler, HoldingHandler)
    handler.first_reply = "451 4.3.0 Temporary local problem, try again later"
    path = one_letter(tmp_path, database_url, slow_smtp, lease_seconds=10)
    settings = load_settings(path)

    async def take_over() -> Summary:
        app = App(settings=settings, user="other")
        try:
            async with Renderer(settings, workers=1) as renderer:
                return await Dispatcher(app, app.plugins, renderer, worker="other").run()
        finally:
            await app.close()

    with Daemon(path, tmp_path / "daemon.log") as daemon:
        assert handler.holding.wait(60), daemon.log
        os.kill(daemon.pid, signal.SIGSTOP)
        try:
            wait_until(lambda: (until := lease_until(database_url)) is not None
                       and until < dt.datetime.now(dt.UTC), 30, "the stalled daemon's lease to run out")
            other = asyncio.run(take_over())
            assert dict(other.sent) == {"email": 1}
        finally:
            handler.release.set()
            os.kill(daemon.pid, signal.SIGCONT)
        daemon.wait_for_log("451 4.3.0")
        assert daemon.stop() == 0

    row = reminder(database_url, NUMBER)
    assert (row["state"], row["claimed_by"], row["sent_channel"]) == ("sent", "other", "email")
    assert row["last_reminded_level"] == 1 and row["last_error"] is None
    outcomes = [line for line in history(database_url, NUMBER)
                if line.startswith(("Relance", "Échec"))]
    assert outcomes == ["Relance niveau 1 (Email)"]
    assert [m.rcpt_tos for m in handler.messages] == [[EMAIL]]  # the stalled copy was refused
    assert "reminder 1: retry not recorded (SMTP: server replied 451 4.3.0" in daemon.log
    assert "(the reminder is sent, claimed by other until -)" in daemon.log
