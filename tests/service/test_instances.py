"""Several daemons on one PostgreSQL database share the work, and no letter twice.

Claims use ``FOR UPDATE SKIP LOCKED``; escalation runs on one instance at a
time under an advisory lock.  The daemons are real processes against the
test run's PostgreSQL database, sending to a real SMTP server.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import empty_postgres
from daemon_helpers import (
    Daemon,
    daemon_settings,
    invoices_tsv,
    ledger,
    message_ids,
    number_of,
    query,
    states,
    stop_all,
    wait_until,
)
from helpers import Cli, write_settings
from servers import SmtpServer, smtp_server, tls_files  # noqa: F401 - fixtures
from sqlalchemy import func, select, text

from relances.channels.smtp import message_id_for
from relances.daemon.config import load_settings
from relances.daemon.models import HistoryEntry, Invoice, Reminder, RunRecord
from relances.daemon.service.jobs import ESCALATION_LOCK, escalate_job
from relances.daemon.service.locks import advisory_key
from relances.daemon.storage import App

LETTERS = 1000
DAEMONS = 3


@pytest.fixture
def pg_url(postgres_url: str) -> str:
    asyncio.run(empty_postgres(postgres_url))
    return postgres_url


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_three_daemons_share_1000_letters_and_send_each_once(
        tmp_path: Path, pg_url: str, smtp_server: SmtpServer) -> None:
    """The invoices start at level 0: each daemon escalates at start (one at
    a time, under the advisory lock), then all three dispatch from one queue.

    A daemon whose start-up escalation was skipped may find nothing queued
    yet (the escalating one queues after it); it joins at the next
    scheduled dispatch, here every minute.
    """
    settings = daemon_settings(tmp_path / "settings.yaml", pg_url, ["email"],
                               {"email": smtp_server.channel_options()}, quick=True,
                               render_workers=1, batch_size=20, lease_seconds=60)
    settings.write_text(settings.read_text(encoding="utf-8").replace(
        "dispatch: null", "dispatch: '* * * * *'"), encoding="utf-8")
    ledger(settings, invoices_tsv(tmp_path / "invoices.tsv", LETTERS, level=0))
    started = time.monotonic()
    daemons = [Daemon(settings, tmp_path / f"daemon-{n}.log") for n in range(DAEMONS)]
    try:
        wait_until(lambda: states(pg_url)["sent"] == LETTERS, 400, "every letter sent",
                   interval=1)
        elapsed = time.monotonic() - started
        assert [daemon.stop() for daemon in daemons] == [0] * DAEMONS
    finally:
        stop_all(daemons)

    arrived = message_ids(smtp_server.handler.messages)
    expected = {message_id_for(f"letter:{number_of('K', n)}:1:email", "entreprise.example")
                for n in range(1, LETTERS + 1)}
    assert set(arrived) == expected
    assert set(arrived.values()) == {1}, f"sent twice: {[k for k, c in arrived.items() if c > 1]}"

    # Each daemon did part of the work: the worker that claimed each letter last
    # (host:pid) and the letters each daemon logged as sent.
    workers = Counter(worker for (worker,) in query(pg_url, select(Reminder.claimed_by)))
    by_log = [len(re.findall(r" sent by email ", daemon.log)) for daemon in daemons]
    print(f"\n{LETTERS} letters by {DAEMONS} daemons in {elapsed:.0f} s; "
          f"claimed by {dict(workers)}; logged as sent per daemon: {by_log}")
    assert sum(by_log) == LETTERS
    assert len(workers) >= 2 and sum(1 for n in by_log if n) >= 2
    assert {w.rsplit(":", 1)[1] for w in workers} <= {str(d.pid) for d in daemons}

    # Escalated once: one run raised every invoice, the other daemons' runs
    # were skipped under the lock or found nothing left to raise.
    assert query(pg_url, select(Invoice.level, func.count(func.distinct(Invoice.level1_run_id)),
                                func.count()).group_by(Invoice.level)) == [(1, 1, LETTERS)]
    logs = "".join(daemon.log for daemon in daemons)
    raised = re.findall(r"jobs: escalation: (\d+) invoices escalated", logs)
    skipped = logs.count("escalation skipped: another instance holds the lock")
    assert sorted(raised, key=int)[-1] == str(LETTERS) and len(raised) + skipped == DAEMONS
    assert set(raised) <= {"0", str(LETTERS)}
    # Stamped once each: one "sent" line per invoice in the history.
    per_invoice = query(pg_url, select(func.count()).select_from(HistoryEntry)
                        .where(HistoryEntry.event == "sent").group_by(HistoryEntry.invoice_id))
    assert sorted(per_invoice) == [(1,)] * LETTERS


@pytest.mark.timeout(180)
def test_concurrent_escalations_raise_each_invoice_once(tmp_path: Path, pg_url: str) -> None:
    settings = write_settings(tmp_path / "settings.yaml", {"database.url": pg_url})
    cli = Cli(settings)
    cli(["import", "invoices", str(invoices_tsv(tmp_path / "invoices.tsv", LETTERS, level=0))])

    async def escalate_while_locked() -> object:
        """Another instance holds the lock: this one skips and changes nothing."""
        holder, app = App(settings=load_settings(settings)), App(settings=load_settings(settings))
        try:
            async with holder.engine.begin() as conn:
                await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                   {"key": advisory_key(ESCALATION_LOCK)})
                return await escalate_job(app)
        finally:
            await app.close()
            await holder.close()

    async def escalate_at_once(count: int) -> list[int | None]:
        apps = [App(settings=load_settings(settings)) for _ in range(count)]
        try:
            for app in apps:  # connected beforehand, so the escalations start together
                async with app.engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
            results = await asyncio.gather(*(escalate_job(app) for app in apps))
            return [None if r is None else r.total for r in results]
        finally:
            for app in apps:
                await app.close()

    assert asyncio.run(escalate_while_locked()) is None
    assert query(pg_url, select(func.max(Invoice.level))) == [(0,)]
    assert query(pg_url, select(func.count()).select_from(RunRecord)
                 .where(RunRecord.job == "escalate")) == [(0,)]

    totals = asyncio.run(escalate_at_once(4))
    assert sorted(t for t in totals if t is not None)[-1] == LETTERS
    assert sum(t or 0 for t in totals) == LETTERS, totals
    assert query(pg_url, select(Invoice.level, func.count(func.distinct(Invoice.level1_run_id)),
                                func.count()).group_by(Invoice.level)) == [(1, 1, LETTERS)]
    runs = query(pg_url, select(func.count()).select_from(RunRecord)
                 .where(RunRecord.job == "escalate"))
    assert runs == [(sum(1 for t in totals if t is not None),)]
