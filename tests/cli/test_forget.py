"""``relances customer CODE --forget``: erased once the law allows it, refused before.

Two customers each get a letter through the archive channel and pay; the
first is forgotten, on SQLite and on PostgreSQL.  Before the retention
has passed, or while something is owed, the command lists why and changes
nothing; after it, the customer's data, letters and history are gone, the
archived PDF too, one history line says it happened, and the other
customer is untouched.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from daemon_helpers import daemon_settings, invoices_tsv, ledger, number_of, query
from helpers import Cli
from sqlalchemy import insert, select

from relances.daemon import storage
from relances.daemon.cli.main import main
from relances.daemon.models import BankEntry, BankStatement, Customer, Document, HistoryEntry

TODAY = dt.date.today()
FIRST, SECOND = number_of("K", 1), number_of("K", 2)


def _sent_and_paid(tmp_path: Path, url: str, *, pay: bool = True) -> Cli:
    settings = daemon_settings(tmp_path / "settings.yaml", url, ["archive"],
                               {"archive": {"folder": str(tmp_path / "letters")}}, quick=True)
    cli = ledger(settings, invoices_tsv(tmp_path / "invoices.tsv", 2))
    cli("escalate")
    cli("send")
    if pay:
        cli(f"pay {FIRST}")
        cli(f"pay {SECOND}")
    return cli


def _letters(tmp_path: Path) -> list[str]:
    return sorted(p.name.split("_", 1)[1] for p in (tmp_path / "letters").glob("*.pdf"))


def test_a_customer_is_not_forgotten_while_the_proofs_must_be_kept(
        tmp_path: Path, database_url: str) -> None:
    cli = _sent_and_paid(tmp_path, database_url)
    years_on = TODAY.replace(year=TODAY.year + 10) - dt.timedelta(days=1)
    result = cli(f"customer K0001 --forget --yes --as-of {years_on}", ok=False)
    assert result.exit_code == 1
    kept = f"kept until {TODAY.replace(year=TODAY.year + 10):%d/%m/%Y} (customers.keep_years: 10)"
    assert "K0001 cannot be forgotten yet:" in result.stderr
    assert f"the reminder sent on {TODAY:%d/%m/%Y} for {FIRST}: {kept}" in result.stderr
    assert f"the payment of {TODAY:%d/%m/%Y} on {FIRST}: {kept}" in result.stderr
    assert "CLIENT 0001" in cli("customer K0001").stdout  # nothing changed
    assert _letters(tmp_path) == ["K0001_K-F0001_relance-1.pdf", "K0002_K-F0002_relance-1.pdf"]


def test_a_customer_who_owes_is_not_forgotten(tmp_path: Path, database_url: str) -> None:
    cli = _sent_and_paid(tmp_path, database_url, pay=False)
    result = cli(f"customer K0001 --forget --yes --as-of {TODAY.year + 20}-01-01", ok=False)
    assert result.exit_code == 1
    assert f"invoice {FIRST}: 120,00 € still owed" in result.stderr
    assert "kept until" not in result.stderr  # twenty years on: only the debt stands


def test_after_the_retention_the_customer_is_erased_and_one_line_says_so(
        tmp_path: Path, database_url: str) -> None:
    cli = _sent_and_paid(tmp_path, database_url)
    # A bank entry that named the payer: it stays (read again, it applies nothing), blank.
    ((customer_id,),) = query(database_url, select(Customer.id).where(Customer.code == "K0001"))
    _bank_entry(database_url, customer_id)
    later = f"{TODAY.year + 11}-01-01"
    refused = cli.runner.invoke(main, ["--config", str(cli.settings), "customer", "K0001",
                                             "--forget", "--as-of", later], input="n\n")
    assert refused.exit_code == 1 and "Erase the personal data of K0001 — CLIENT 0001" in \
        refused.output
    assert "CLIENT 0001" in cli("customer K0001").stdout

    out = cli(f"customer K0001 --forget --yes --as-of {later}").stdout
    assert out.startswith("K0001: personal data erased (")
    assert "1 invoices" in out and "1 reminders" in out and "1 documents" in out
    code = out.split("the customer is now ")[1].split()[0]
    assert code.startswith("EFFACE-")
    assert "Copies outside Relances" not in out  # the archive deleted its own file
    assert _letters(tmp_path) == ["K0002_K-F0002_relance-1.pdf"]

    assert cli("customer K0001", ok=False).exit_code != 0
    card = cli(f"customer {code}").stdout
    assert "(client effacé)" in card and "compta1@" not in card
    lines = query(database_url, select(HistoryEntry.action, HistoryEntry.user)
                  .where(HistoryEntry.customer_id == customer_id))
    assert len(lines) == 1 and lines[0][1] == "tester"
    assert lines[0][0].startswith("Données du client effacées (")
    assert "conservation de 10 ans écoulée" in lines[0][0]
    assert query(database_url, select(BankEntry.counterparty, BankEntry.counterparty_iban,
                                      BankEntry.text, BankEntry.customer_id)) == [
        ("", None, "", None)]
    # The other customer keeps everything: invoice, letter, proof.
    assert "CLIENT 0002" in cli("customer K0002").stdout
    assert len(query(database_url, select(Document.id))) == 1
    assert "Relance niveau 1" in cli(f"history {SECOND}").stdout


def _bank_entry(url: str, customer_id: int) -> None:
    async def run() -> None:
        engine = storage.create_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.execute(insert(BankStatement).values(
                    id=1, source="releve.xml", format="camt.053", read_by="tester",
                    read_at=dt.datetime.now(dt.UTC)))
                await conn.execute(insert(BankEntry).values(
                    identity="e-1", statement_id=1, booked_on=TODAY, amount=Decimal("120"),
                    counterparty="CLIENT 0001", counterparty_iban="FR7630006000011234567890189",
                    text="VIR CLIENT 0001 K-F0001", state="matched", customer_id=customer_id))
        finally:
            await engine.dispose()

    asyncio.run(run())


pytestmark = pytest.mark.timeout(300)
