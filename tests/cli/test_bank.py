"""``relances import bank`` and ``relances bank``: a real camt.053 read as a user would.

The statement is written here in the published camt.053.001.08 layout, with
valid IBANs and the RF references Relances prints on its letters, and read
on SQLite and PostgreSQL: payments matched, nothing applied twice, the
review queue worked by hand, and a reminder queued for a paid invoice never
leaves.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from helpers import Cli

from relances.daemon.ledger.references import invoice_reference

IBAN = "FR7630006000011234567890189"  # the seller's
PAYER = "FR1420041010050500013M02606"
ROW = ("SGE\tSGE\tSOCIETE GENERALE ETIENNE\t\t01/09/2026\t{number}\tPC\tPC\t{amount}\t"
       "{amount}\t{due}\tVirement\t1\t\t(i)\t\t1")


def ntry(n: int, amount: str, *, text: str = "", reference: str = "", iban: str = PAYER,
         credit: bool = True) -> str:
    strd = (f"<Strd><CdtrRefInf><Tp><CdOrPrtry><Cd>SCOR</Cd></CdOrPrtry></Tp><Ref>{reference}"
            "</Ref></CdtrRefInf></Strd>") if reference else ""
    ustrd = f"<Ustrd>{text}</Ustrd>" if text else ""
    return f"""<Ntry><NtryRef>{n}</NtryRef><Amt Ccy="EUR">{amount}</Amt>
<CdtDbtInd>{"CRDT" if credit else "DBIT"}</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>
<BookgDt><Dt>2026-11-30</Dt></BookgDt><ValDt><Dt>2026-11-30</Dt></ValDt>
<AcctSvcrRef>261130CRE{n:04d}</AcctSvcrRef>
<NtryDtls><TxDtls><Refs><EndToEndId>E2E-{n}</EndToEndId></Refs>
<Amt Ccy="EUR">{amount}</Amt><CdtDbtInd>{"CRDT" if credit else "DBIT"}</CdtDbtInd>
<RltdPties><Dbtr><Pty><Nm>SOCIETE GENERALE ETIENNE</Nm></Pty></Dbtr>
<DbtrAcct><Id><IBAN>{iban}</IBAN></Id></DbtrAcct></RltdPties>
<RmtInf>{ustrd}{strd}</RmtInf></TxDtls></NtryDtls></Ntry>"""


def camt(path: Path, *entries: str) -> Path:
    path.write_text(f"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08">
<BkToCstmrStmt><GrpHdr><MsgId>M1</MsgId><CreDtTm>2026-12-01T06:00:00+01:00</CreDtTm></GrpHdr>
<Stmt><Id>STMT-2026-11-30</Id><CreDtTm>2026-12-01T06:00:00+01:00</CreDtTm>
<Acct><Id><IBAN>{IBAN}</IBAN></Id><Ccy>EUR</Ccy></Acct>
{"".join(entries)}
</Stmt></BkToCstmrStmt></Document>
""", encoding="utf-8")
    return path


def listed(cli: Cli) -> dict[str, str]:
    rows = json.loads(cli(["list", "--format", "json", "--as-of", "2026-12-02"]).stdout)
    return {r["invoice_number"]: r["remaining"] for r in rows}


def invoice_id(cli: Cli, number: str) -> int:
    import asyncio

    from relances.daemon.ledger import book
    from relances.daemon.storage import App

    async def find() -> int:
        app = App.load(cli.settings)
        try:
            async with app.sessions() as session:
                return (await book.invoice_by_number(session, number)).id
        finally:
            await app.close()

    return asyncio.run(find())


def test_a_statement_pays_invoices_once_and_the_rest_waits(
        cli: Cli, tsv: Callable[..., Path], tmp_path: Path) -> None:
    cli(["import", "invoices", str(tsv(ROW.format(number="FA-2024-008", amount="2 400,00",
                                                  due="01/09/2026"),
                                       ROW.format(number="FA-2024-010", amount="600,00",
                                                  due="01/10/2026")))])
    reference = invoice_reference("FA-2024-008", invoice_id(cli, "FA-2024-008"))
    statement = camt(tmp_path / "releve.xml",
                     ntry(1, "2400.00", reference=reference),
                     ntry(2, "250.00", text="ACOMPTE FA 2024 010"),
                     ntry(3, "77.00", text="MERCI"),
                     ntry(4, "12.00", text="FRAIS", credit=False))
    out = cli(["import", "bank", str(statement)]).stdout
    assert (f"{statement}: camt.053.001.08, 4 entries: 4 new, 0 already read; 2 matched, "
            "0 already recorded, 1 to review, 1 ignored (debits)") in out
    assert "waiting for a person: `relances bank review`" in out
    assert listed(cli) == {"FA-2024-010": "350.00"}
    assert "Règlement 2 400,00 € — virement du 30/11/2026" \
        in cli("history FA-2024-008").stdout.replace("\u202f", " ")
    # The same statement again applies nothing.
    again = cli(["import", "bank", str(statement)]).stdout
    assert "4 entries: 0 new, 4 already read; 0 matched" in again
    assert listed(cli) == {"FA-2024-010": "350.00"}
    # The 77 € waits: a person says what it is.
    review = cli("bank review").stdout
    assert "77,00" in review and "MERCI" in review
    entry = next(line.split()[0] for line in review.splitlines() if "MERCI" in line)
    assert "FA-2024-010: 77.00 € recorded" in cli(f"bank match {entry} FA-2024-010").stdout
    assert listed(cli) == {"FA-2024-010": "273.00"}
    assert "nothing waits for review" in cli("bank review").stdout
    status = cli("status").stdout
    assert "last statement read: releve.xml (camt.053.001.08, " in status
    assert "waiting for review: 0 entries" in status


def test_a_wrong_file_is_refused_whole(cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "releve.xml"
    bad.write_text("<html><body>Votre relevé</body></html>", encoding="utf-8")
    result = cli(["import", "bank", str(bad)], ok=False)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"relances: error: {bad}: ")
    assert "bank statement" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_reminder_queued_for_an_invoice_paid_by_the_bank_never_leaves(
        cli: Cli, tsv: Callable[..., Path], tmp_path: Path) -> None:
    cli(["import", "invoices", str(tsv(ROW.format(number="FA-2024-010", amount="600,00",
                                                  due="01/09/2026")))])
    assert "1 reminders would be sent" in cli("send --dry-run --as-of 2026-12-02").stdout
    cli(["import", "bank", str(camt(tmp_path / "r.xml", ntry(1, "600.00",
                                                             text="FACTURE FA-2024-010")))])
    out = cli("send --as-of 2026-12-02").stdout
    assert "nothing to send" in out
    assert not (tmp_path / "data" / "letters").exists() or \
        not list((tmp_path / "data" / "letters").iterdir())


def test_a_customers_file_gives_the_accounts_a_customer_pays_from(
        cli: Cli, tsv: Callable[..., Path], tmp_path: Path) -> None:
    cli(["import", "invoices", str(tsv(ROW.format(number="FA-2024-010", amount="600,00",
                                                  due="01/09/2026")))])
    customers = tmp_path / "clients.csv"
    customers.write_text("code;name;IBAN\nSGE;SOCIETE GENERALE ETIENNE;"
                         "FR14 2004 1010 0505 0001 3M02 606, DE89370400440532013000\n",
                         encoding="utf-8")
    assert "0 new customers, 1 updated" in cli(["import", "customers", str(customers)]).stdout
    assert "1 unchanged" in cli(["import", "customers", str(customers)]).stdout
    out = cli(["import", "bank", str(camt(tmp_path / "r.xml", ntry(1, "600.00", text="MERCI")))])
    assert "1 matched" in out.stdout
    assert listed(cli) == {}
    bad = tmp_path / "bad.csv"
    bad.write_text("code;name;IBAN\nSGE;SOCIETE GENERALE ETIENNE;FR00 1234\n", encoding="utf-8")
    err = cli(["import", "customers", str(bad)], ok=False).stderr
    assert f"{bad}:2: column 'IBAN': not a valid IBAN: 'FR00'" in err
