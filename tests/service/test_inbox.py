"""The drop folder: files of the books imported when whole, moved to done/ or failed/.

The first tests drive the inbox in-process on SQLite and PostgreSQL; the
last runs ``relances daemon --once`` on a folder, as an administrator
would set it up, and reads ``relances status``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from cdar_samples import message, reference
from daemon_helpers import Daemon
from facturx_samples import en16931_xml, facturx_pdf, plain_pdf
from helpers import ROOT, SAMPLE, Cli, write_settings
from sqlalchemy import select

from relances.daemon.ledger.book import invoice_by_number
from relances.daemon.models import RunRecord
from relances.daemon.service.inbox import Inbox
from relances.daemon.storage import App

FEC = ROOT / "tests" / "ledger" / "fec" / "812345678FEC20241231.txt"


@pytest.fixture
def inbox(app: App, tmp_path: Path) -> Inbox:
    folder = tmp_path / "inbox"
    folder.mkdir()
    return Inbox(app, folder)


async def test_each_kind_of_file_finds_its_import(inbox: Inbox, app: App, tmp_path: Path) -> None:
    shutil.copy(SAMPLE / "customers.csv", inbox.folder / "clients.csv")
    shutil.copy(SAMPLE / "seed.tsv", inbox.folder / "export.tsv")
    shutil.copy(FEC, inbox.folder / "FEC2024.txt")
    facturx_pdf(inbox.folder, plain_pdf(), en16931_xml(), name="facture.pdf")
    (inbox.folder / "notes.txt").write_text("rappeler M. Martin lundi\n", encoding="utf-8")
    (inbox.folder / "big.tsv.part").write_text("still being written", encoding="utf-8")

    assert await inbox.look() == []  # seen once: not yet known to be whole
    outcomes = {o.path.name.split("_", 1)[1]: o for o in await inbox.look()}
    assert {name: o.source for name, o in outcomes.items()} == {
        "clients.csv": "customers", "export.tsv": "invoices", "FEC2024.txt": "fec",
        "facture.pdf": "facturx", "notes.txt": None}
    assert all(o.ok for name, o in outcomes.items() if name != "notes.txt")
    done = sorted(p.name.split("_", 1)[1] for p in (inbox.folder / "done").iterdir())
    assert done == ["FEC2024.txt", "clients.csv", "export.tsv", "facture.pdf"]
    failed = inbox.folder / "failed"
    error = next(failed.glob("*_notes.txt.error.txt")).read_text(encoding="utf-8")
    assert "notes.txt: not a file Relances imports" in error and error.count("\n") == 1
    assert (inbox.folder / "big.tsv.part").exists()  # never read
    async with app.sessions() as session:
        assert (await invoice_by_number(session, "COD_F1026")).remaining == Decimal("680.40")
        assert (await invoice_by_number(session, "F2024-001")).remaining == Decimal("900.00")
        jobs = sorted((await session.execute(select(RunRecord.job, RunRecord.ok))).all())
    assert jobs == [("import:customers", True), ("import:facturx", True), ("import:fec", True),
                    ("import:invoices", True), ("import:unknown", False)]
    assert (tmp_path / "invoices" / "F2024-001.pdf").is_file()  # the e-invoice's copy


async def test_a_file_still_growing_waits(inbox: Inbox, tsv: Callable[..., Path]) -> None:
    whole = SAMPLE.joinpath("seed.tsv").read_text(encoding="utf-8")
    target = inbox.folder / "export.tsv"
    target.write_text(whole[:200], encoding="utf-8")
    assert await inbox.look() == []
    target.write_text(whole, encoding="utf-8")  # more arrived since the last look
    assert await inbox.look() == []
    [outcome] = await inbox.look()
    assert outcome.ok and "2 rows: 2 new" in outcome.summary


async def test_a_refused_import_writes_nothing_and_says_why(inbox: Inbox, app: App,
                                                           tsv: Callable[..., Path]) -> None:
    bad = SAMPLE.joinpath("seed.tsv").read_text(encoding="utf-8").replace("253,06", "25x,06")
    (inbox.folder / "export.tsv").write_text(bad, encoding="utf-8")
    inbox.ready()
    [outcome] = await inbox.look()
    assert not outcome.ok
    assert "export.tsv:2: column 'Total Fac.': not an amount: '25x,06'" in outcome.summary
    assert outcome.path.parent.name == "failed"
    async with app.sessions() as session:
        assert (await session.execute(select(RunRecord.summary))).scalar_one().endswith(
            "not an amount: '25x,06'")


def test_the_daemon_imports_its_inbox_and_status_says_so(tmp_path: Path,
                                                         database_url: str) -> None:
    settings = write_settings(tmp_path / "settings.yaml", {
        "database.url": database_url, "imports.inbox": "inbox", "imports.poll_seconds": 1,
        "schedule.escalate": None, "schedule.dispatch": None,
        "channels": {"archive": {"folder": str(tmp_path / "letters")}}})
    cli = Cli(settings)
    cli("init")
    (tmp_path / "inbox").mkdir()
    shutil.copy(SAMPLE / "seed.tsv", tmp_path / "inbox" / "export.tsv")
    (tmp_path / "inbox" / "bad.csv").write_text("colour;size\nred;XL\n", encoding="utf-8")
    with Daemon(settings, tmp_path / "daemon.log", once=True) as daemon:
        assert daemon.wait(timeout=120) == 0, daemon.log
        assert "inbox: export.tsv imported as invoices: 2 rows: 2 new" in daemon.log
    assert "COD_F1026" in cli("list --as-of 2024-11-22").stdout
    status = cli("status").stdout
    assert "Last import of each source:" in status
    assert "invoices  export.tsv: 2 rows: 2 new, 0 updated, 0 unchanged" in status
    assert "Refused imports:" in status and "bad.csv: refused: " in status


async def test_a_platform_status_dropped_in_the_inbox_is_applied(inbox: Inbox, app: App) -> None:
    shutil.copy(SAMPLE / "seed.tsv", inbox.folder / "export.tsv")
    (inbox.folder / "statut-cdv.xml").write_text(
        message(reference("COD_F1026", "207", reason="AUTRE", siren="")), encoding="utf-8")
    await inbox.look()
    outcomes = {o.path.name.split("_", 1)[1]: o for o in await inbox.look()}
    assert outcomes["statut-cdv.xml"].source == "cdar" and outcomes["statut-cdv.xml"].ok
    assert outcomes["statut-cdv.xml"].summary.startswith("1 statuses: 1 applied")
    async with app.sessions() as session:
        assert (await invoice_by_number(session, "COD_F1026")).hold_reason == \
            "Plateforme 207 En litige : AUTRE"
