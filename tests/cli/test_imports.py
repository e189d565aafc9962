"""``relances import fec`` and ``relances import facturx``: the books as accountants hand them over.

Real files: two FEC layouts (tab and pipe, UTF-8 and ISO-8859-15) and
Factur-X PDFs made with the factur-x library, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from cdar_samples import message, reference
from facturx_samples import MINIMUM_XML, en16931_xml, facturx_pdf, plain_pdf
from helpers import ROOT, Cli
from pypdf import PdfReader

FEC = ROOT / "tests" / "ledger" / "fec"
TAB_FEC = FEC / "812345678FEC20241231.txt"
PIPE_FEC = FEC / "798765432FEC20241231.txt"


def listed(cli: Cli, as_of: str = "2025-01-01") -> dict[str, dict[str, object]]:
    out = json.loads(cli(["list", "--format", "json", "--as-of", as_of]).stdout)
    return {r["invoice_number"]: r for r in out}  # type: ignore[misc]


def test_the_fec_gives_the_open_receivables(cli: Cli) -> None:
    out = cli(["import", "fec", str(TAB_FEC)]).stdout
    assert "5 new" in out
    rows = listed(cli)
    assert {n: r["remaining"] for n, r in rows.items()} == {
        "FA-2024-003": "240.00", "FA-2024-005": "460.00", "FA-2024-008": "2400.00",
        "FA-2024-009": "120.50", "FA-2024-010": "400.00"}
    assert rows["FA-2024-008"]["customer_name"] == "Société Générale Étienne"
    assert rows["FA-2024-008"]["due_date"] == "2024-05-01"  # PieceDate + 30 days
    # Years of paid invoices are not brought in.
    assert "no invoice numbered 'FA-2024-001'" in cli("invoice FA-2024-001", ok=False).stderr


def test_the_fec_settles_what_the_books_settled_and_says_how(cli: Cli, tsv: Callable[..., Path]) -> None:
    export = tsv(*(f"C001\tC001\tSociété Générale Étienne\t\t15/01/2024\t{number}\tPC\tPC\t"
                   f"{amount}\t{amount}\t14/02/2024\tVirement\t1\t\t(i)\t\t"
                   for number, amount in (("FA-2024-001", "1 440,00"), ("FA-2024-007", "720,00"),
                                          ("FA-2024-099", "99,00"))), name="erp.tsv")
    cli(["import", "invoices", str(export)])
    out = cli(["import", "fec", str(TAB_FEC)]).stdout
    assert "3 settled in the books" in out
    assert set(listed(cli)) == {"FA-2024-003", "FA-2024-005", "FA-2024-008", "FA-2024-009",
                                "FA-2024-010"}
    assert ("Soldée dans la comptabilité — Lettrée dans la comptabilité "
            "(812345678FEC20241231.txt)") in cli("history FA-2024-001").stdout
    assert "Passée en perte (654) dans la comptabilité" in cli("history FA-2024-007").stdout
    assert ("Soldée dans la comptabilité — absente du FEC 812345678FEC20241231.txt"
            in cli("history FA-2024-099").stdout)


def test_an_aggregated_opening_balance_is_one_item_per_customer(cli: Cli) -> None:
    cli(["import", "fec", str(PIPE_FEC)])
    rows = listed(cli)
    assert rows["AN-411SOCGEN-20240101"]["remaining"] == "1500.00"
    assert rows["F240003"]["customer_name"] == "Cœur de Lyon SARL"  # ISO-8859-15
    assert "Libellé     Solde à nouveau" in cli("invoice AN-411SOCGEN-20240101").stdout


def test_a_wrong_fec_is_refused_whole_naming_line_and_column(cli: Cli, tmp_path: Path) -> None:
    lines = TAB_FEC.read_text(encoding="utf-8-sig").splitlines()
    lines[10] = lines[10].replace("20240120", "2024-01-20", 1)  # line 11, VE000002
    bad = tmp_path / "bad.fec.txt"
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = cli(["import", "fec", str(bad)], ok=False)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"relances: error: {bad}:11: column 'EcritureDate'")
    assert listed(cli) == {}


def test_the_fec_dry_run_writes_nothing(cli: Cli) -> None:
    out = cli(["import", "fec", "--dry-run", str(TAB_FEC)]).stdout
    assert "dry run, nothing written: 5 rows: 5 new" in out
    assert listed(cli) == {}


@pytest.fixture(scope="module")
def base_pdf() -> bytes:
    return plain_pdf()


def test_a_factur_x_invoice_becomes_an_invoice_its_buyer_and_its_copy(
        cli: Cli, tmp_path: Path, base_pdf: bytes) -> None:
    inbox = tmp_path / "received"
    inbox.mkdir()
    pdf = facturx_pdf(inbox, base_pdf, en16931_xml(), name="F2024-001.pdf")
    out = cli(["import", "facturx", str(inbox)]).stdout
    assert "1 rows: 1 new" in out
    row = listed(cli)["F2024-001"]
    assert (row["customer_code"], row["total"], row["remaining"], row["due_date"]) == (
        "CLI042", "1200.00", "900.00", "2024-02-14")
    card = cli("customer CLI042").stdout
    assert "CLI042 — Boulangerie Martin SARL (professionnel, fr)" in card
    assert "SIREN      732829320" in card and "12 rue de la République" in card
    # The PDF is the invoice's copy, in the invoices folder the letters read.
    copy = tmp_path / "invoices" / "F2024-001.pdf"
    assert copy.read_bytes() == pdf.read_bytes()
    # The formal notice carries it: the letter, then the invoice.
    cli("set-level F2024-001 3")
    letter = tmp_path / "notice.pdf"
    cli(["preview", "F2024-001", "--as-of", "2024-06-01", "-o", str(letter)])
    assert len(PdfReader(letter).pages) == len(PdfReader(copy).pages) + 1


def test_a_bad_file_in_a_folder_refuses_the_folder_unless_partial(
        cli: Cli, tmp_path: Path, base_pdf: bytes) -> None:
    folder = tmp_path / "received"
    folder.mkdir()
    facturx_pdf(folder, base_pdf, en16931_xml(), name="a.pdf")
    facturx_pdf(folder, base_pdf, MINIMUM_XML, level="minimum", name="b.pdf")
    (folder / "c.pdf").write_bytes(base_pdf)  # a PDF with no Factur-X data
    result = cli(["import", "facturx", str(folder)], ok=False)
    assert result.exit_code == 1
    assert f"{folder / 'c.pdf'}: no Factur-X data in this PDF" in result.stderr
    assert listed(cli) == {}
    result = cli(["import", "facturx", "--partial", str(folder)])
    assert f"refused: {folder / 'c.pdf'}: no Factur-X data in this PDF" in result.stderr
    assert "2 files imported, 1 refused" in result.stderr
    assert set(listed(cli)) == {"F2024-001", "F2024-002"}


def test_platform_statuses_hold_settle_and_are_read_once(seeded: Cli, tmp_path: Path) -> None:
    path = tmp_path / "cdv.xml"
    path.write_text(message(reference("COD_F1026", "207", reason="MONTANTTOTAL_ERR", siren=""),
                            reference("COD_F1023", "212", cashed="253.06", siren=""),
                            reference("F-INCONNUE", "211", siren="")), encoding="utf-8")
    out = seeded(["import", "cdar", str(path)])
    assert out.stdout.strip() == (f"{path}: 3 statuses: 2 applied, 0 kept for the record, 0 already "
                                  "read, 1 for invoices not in the ledger, 0 left out")
    assert "not in the ledger (import the invoices, then this file again): F-INCONNUE" in out.stderr
    assert "Plateforme 207 En litige : MONTANTTOTAL_ERR" in seeded("invoice COD_F1026").stdout
    assert "COD_F1023" not in seeded("list").stdout  # settled
    again = seeded(["import", "cdar", str(path)]).stdout
    assert "0 applied, 0 kept for the record, 2 already read" in again


def test_a_status_file_that_does_not_fit_exits_with_one_line(seeded: Cli, tmp_path: Path) -> None:
    path = tmp_path / "cdv.xml"
    path.write_text(message(reference("COD_F1026", "2O7", siren="")), encoding="utf-8")
    result = seeded(["import", "cdar", str(path)], ok=False)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"relances: error: {path}: line ")
    assert "ram:ProcessConditionCode: '2O7' is not a status of the specification" in result.stderr
    assert result.stderr.count("\n") == 1


# A cell, and the address in it the error names (a NUL or another control character is
# refused before the address is read: tests/cli/test_hostile_imports.py).
BAD_ADDRESSES = {"<victim@example.com>": "<victim@example.com>",
                 "@evil.example:victim@example.com": "@evil.example:victim@example.com",
                 "Compta <compta@intel.example>": "Compta <compta@intel.example>",
                 "compta@intel.example; victim@": "victim@",
                 "compta@intel\u202e.example": "compta@intel\u202e.example"}


def invoice_line(n: int, email: str = "") -> str:
    return (f"C{n}\t\tCLIENT {n}\t{email}\t01/01/2024\tF-{n}\t\t\t10,00\t10,00\t31/01/2024"
            "\t\t\t\t\t\t")


@pytest.mark.parametrize(("address", "shown"), BAD_ADDRESSES.items())
def test_an_invoice_export_with_an_invalid_email_is_refused_whole(
        cli: Cli, tsv: Callable[..., Path], address: str, shown: str) -> None:
    # 300 good rows first: the fast reader takes them, and must not take the bad one.
    lines = [invoice_line(n, f"compta@client{n}.example, relances@client{n}.example")
             for n in range(1, 301)]
    path = tsv(*lines, invoice_line(301, address))
    result = cli(["import", "invoices", str(path)], ok=False)
    assert result.exit_code == 1
    assert result.stderr == (f"relances: error: {path}:302: column 'email': not an email "
                             f"address: {shown!r} (write it as name@domain.fr)\n")
    assert json.loads(cli(["list", "--format", "json", "--as-of", "2024-06-01"]).stdout) == []


@pytest.mark.parametrize("address", BAD_ADDRESSES)
def test_a_customers_file_or_json_with_an_invalid_email_is_refused(
        cli: Cli, tmp_path: Path, address: str) -> None:
    customers = tmp_path / "customers.csv"
    with customers.open("w", encoding="utf-8", newline="") as out:
        csv.writer(out, delimiter=";").writerows(
            [["code", "name", "email"], ["C1", "Client One", "compta@one.example"],
             ["C2", "Client Two", address]])
    err = cli(["import", "customers", str(customers)], ok=False).stderr
    assert err.startswith(f"relances: error: {customers}:3: column 'email': not an email "
                          "address: ")
    assert "no customer with code 'C1'" in cli("customer C1", ok=False).stderr

    invoices = tmp_path / "invoices.json"
    invoices.write_text(json.dumps([{
        "customer_code": "C3", "customer_name": "Client Three", "email": address,
        "invoice_number": "F-3", "invoice_date": "01/01/2024", "due_date": "31/01/2024",
        "total": "10.00", "remaining": "10.00"}]), encoding="utf-8")
    err = cli(["import", "invoices", str(invoices)], ok=False).stderr
    assert err.startswith(f"relances: error: {invoices}: record 1: column 'email': not an "
                          "email address: ")


def test_valid_addresses_still_import(cli: Cli, tmp_path: Path, tsv: Callable[..., Path]) -> None:
    path = tsv(invoice_line(1, "compta@client1.example; Relances.Client+1@sub.client1.example"))
    cli(["import", "invoices", str(path)])
    (row,) = json.loads(cli(["list", "--format", "json", "--as-of", "2024-06-01"]).stdout)
    assert row["email"] == "compta@client1.example; Relances.Client+1@sub.client1.example"
    customers = tmp_path / "customers.csv"
    customers.write_text("code;email\nC1;\n", encoding="utf-8")
    cli(["import", "customers", str(customers)])
    (row,) = json.loads(cli(["list", "--format", "json", "--as-of", "2024-06-01"]).stdout)
    assert row["email"] is None  # an empty cell still clears the address


def test_an_import_is_recorded_with_its_counts_and_a_dry_run_or_a_refusal_is_not(
        cli: Cli, tmp_path: Path) -> None:
    cli(["import", "fec", str(TAB_FEC), "--dry-run"])
    bad = tmp_path / "bad.txt"
    bad.write_text(TAB_FEC.read_text(encoding="utf-8").replace("240,00", "24x,00"), encoding="utf-8")
    cli(["import", "fec", str(bad)], ok=False)
    assert "Last import of each source" not in cli("status").stdout
    cli(["import", "fec", str(TAB_FEC)])
    status = cli("status").stdout
    assert "Last import of each source:" in status
    assert f"fec       {TAB_FEC.name}: " in status and "5 new" in status
