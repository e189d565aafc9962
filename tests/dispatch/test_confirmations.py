"""A print job is stamped when CUPS has printed it, and never printed twice after a crash.

Against a real cupsd with cups-pdf (``tests/servers.py``), on SQLite and on
PostgreSQL.  A job held in the queue (``job-hold-until=indefinite``) stands
for a printer that stopped after ``lp`` took the job: CUPS holds it and
nothing prints.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
from pathlib import Path
from typing import Any

import pytest
from daemon_helpers import daemon_settings, history, invoices_tsv, ledger, number_of, reminder
from helpers import Cli
from servers import CupsServer, cups_server  # noqa: F401 - fixtures
from sqlalchemy import Executable, update

from relances.daemon import storage
from relances.daemon.models import Reminder, utcnow

pytestmark = pytest.mark.timeout(180)

NUMBER = number_of("K", 1)
HELD = {"job-hold-until": "indefinite"}


def execute(url: str, statement: Executable) -> None:
    async def run() -> None:
        engine = storage.create_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.execute(statement)
        finally:
            await engine.dispose()

    asyncio.run(run())


def queue_jobs(cups: CupsServer) -> list[str]:
    """The ids of the jobs waiting in the working queue."""
    out = subprocess.run(["lpstat", "-h", cups.server, "-o", cups.printer], capture_output=True,
                         text=True, check=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def cancel(cups: CupsServer, *jobs: str) -> None:
    if jobs:
        subprocess.run(["cancel", "-h", cups.server, *jobs], capture_output=True)


def one_letter(tmp_path: Path, url: str, cups: CupsServer, **print_options: Any) -> Cli:
    settings = daemon_settings(tmp_path / "settings.yaml", url, ["print", "archive"], {
        "print": {"printer": cups.printer, "server": cups.server, **print_options}}, quick=True)
    cli = ledger(settings, invoices_tsv(tmp_path / "invoices.tsv", 1))
    cli("escalate")
    return cli


def test_a_job_never_confirmed_goes_to_the_next_channel(
        tmp_path: Path, database_url: str, cups_server: CupsServer) -> None:
    cli = one_letter(tmp_path, database_url, cups_server, options=HELD)
    before = set(queue_jobs(cups_server))
    try:
        out = cli(f"send --invoice {NUMBER}").stdout
        assert "1 handed over (1 by print), awaiting confirmation" in out
        row = reminder(database_url, NUMBER)
        assert (row["state"], row["last_reminded_on"]) == ("awaiting", None)
        (job,) = set(queue_jobs(cups_server)) - before
        assert row["reference"] == job

        # Held, the job is asked about and still waits.
        assert "nothing to send" in cli(f"send --invoice {NUMBER}").stdout
        assert reminder(database_url, NUMBER)["state"] == "awaiting"

        # Past daemon.confirm_within_minutes (360) without a confirmation.
        execute(database_url, update(Reminder).values(
            handed_over_at=utcnow() - dt.timedelta(hours=7)))
        out = cli(f"send --invoice {NUMBER}").stdout
        assert "1 sent (1 by archive)" in out
    finally:
        cancel(cups_server, *(set(queue_jobs(cups_server)) - before))
    row = reminder(database_url, NUMBER)
    assert (row["state"], row["sent_channel"], row["channel_index"]) == ("sent", "archive", 1)
    assert row["last_reminded_on"] is not None
    lines = history(database_url, NUMBER)
    assert (f"Échec Relance niveau 1 (Courrier) : {job} not confirmed within 6 h of being "
            "handed over — envoi par archive") in lines
    assert lines[-1] == "Relance niveau 1 (Archive)"


def test_after_a_crash_a_job_already_in_cups_is_not_printed_again(
        tmp_path: Path, database_url: str, cups_server: CupsServer) -> None:
    """The daemon died after lp took the job and before it recorded it: the lease
    ran out with the reminder still 'sending'.  The next send asks CUPS first."""
    cli = one_letter(tmp_path, database_url, cups_server, options=HELD)
    before = set(queue_jobs(cups_server))
    try:
        assert "1 handed over" in cli(f"send --invoice {NUMBER}").stdout
        (job,) = set(queue_jobs(cups_server)) - before
        # The row as the dead daemon left it: claimed, lp returned, nothing recorded.
        execute(database_url, update(Reminder).values(
            state="sending", attempts=1, claimed_by="dead-host:1", reference=None,
            sent_channel=None, handed_over_at=None,
            lease_until=utcnow() - dt.timedelta(seconds=1)))

        out = cli(f"send --invoice {NUMBER}").stdout
        assert "1 handed over (1 by print), awaiting confirmation" in out
        assert set(queue_jobs(cups_server)) - before == {job}  # no second job
        row = reminder(database_url, NUMBER)
        assert (row["state"], row["reference"], row["attempts"]) == ("awaiting", job, 2)
    finally:
        cancel(cups_server, *(set(queue_jobs(cups_server)) - before))
