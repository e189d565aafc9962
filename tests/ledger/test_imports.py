"""Importing the ERP's export: the seed's table as it is, CSV, JSON; all or nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from helpers import SAMPLE, Cli


def rows(cli: Cli, *args: str) -> list[dict[str, object]]:
    return json.loads(cli(["list", "--format", "json", *args]).stdout)


def test_seed_rows_import_as_they_are(seeded: Cli) -> None:
    listed = rows(seeded, "--as-of", "22/11/2024")
    assert [(r["customer_code"], r["invoice_number"], r["remaining"], r["due_date"],
             r["last_reminded_on"], r["level"]) for r in listed] == [
        ("DAN01", "COD_F1023", "253.06", "2023-11-24", "2024-11-22", 0),
        ("INT01", "COD_F1026", "680.40", "2024-02-08", "2024-11-19", 0),
    ]
    assert listed[1]["customer_name"] == "INTEL"
    assert listed[1]["total"] == "680.40"
    assert listed[0]["days_overdue"] == 364
    assert listed[0]["on_hold"] is False


def test_table_shows_the_seed_columns_in_french(seeded: Cli) -> None:
    out = seeded("list --as-of 22/11/2024").stdout
    header = out.splitlines()[0].split()
    for column in ("Code", "Affilié", "Nom", "email", "Reste", "Échéance", "N"):
        assert column in header
    assert "680,40" in out and "19/11/2024" in out and "24/11/2023" in out
    assert "2 invoices overdue, 933,46 € due" in out


def test_reimporting_the_same_file_changes_nothing(seeded: Cli) -> None:
    before = rows(seeded, "--as-of", "22/11/2024")
    out = seeded(["import", "invoices", str(SAMPLE / "seed.tsv")]).stdout
    assert "0 new, 0 updated, 2 unchanged" in out
    assert rows(seeded, "--as-of", "22/11/2024") == before


def test_newer_export_updates_amounts_but_never_lowers_level_or_erases_stamp(
        seeded: Cli, tsv: Callable[..., Path]) -> None:
    seeded("escalate --customer INT01 --as-of 22/11/2024")
    newer = tsv("INT01\tINT01\tINTEL\t\t08/02/2024\tCOD_F1026\tPC\tPC\t680,40\t480,40\t"
                "08/02/2024\tChèque\t1\t\t(i)\t\t")
    assert "1 updated" in seeded(["import", "invoices", str(newer)]).stdout
    (int01,) = rows(seeded, "--as-of", "22/11/2024", "--customer", "INT01")
    assert int01["remaining"] == "480.40"
    assert int01["level"] == 1
    assert int01["last_reminded_on"] == "2024-11-19"


def test_level_and_reminder_date_from_the_export(cli: Cli, tsv: Callable[..., Path]) -> None:
    path = tsv("ACM01\t\tACME\ta@acme.example\t01/01/2024\tF-1\t\t\t100,00\t100,00\t"
               "31/01/2024\t\t\t\t05/03/2024\t\t2")
    cli(["import", "invoices", str(path)])
    (row,) = rows(cli, "--as-of", "2024-06-01")
    assert (row["level"], row["last_reminded_on"], row["email"]) == (2, "2024-03-05", "a@acme.example")


def test_bad_row_aborts_the_whole_import(seeded: Cli, tsv: Callable[..., Path]) -> None:
    good = "ZZZ{n}\t\tCUSTOMER {n}\t\t01/01/2024\tF-{n}\t\t\t10,00\t10,00\t31/01/2024\t\t\t\t\t\t"
    lines = [good.format(n=n) for n in range(1, 900)]
    lines.append("ZZZ900\t\tCUSTOMER 900\t\t01/01/2024\tF-900\t\t\t10,00\t10,00\t31/13/2024"
                 "\t\t\t\t\t\t")
    path = tsv(*lines)
    before = rows(seeded, "--as-of", "2025-01-01")
    result = seeded(["import", "invoices", str(path)], ok=False)
    assert result.exit_code == 1
    assert result.stderr.strip() == (f"relances: error: {path}:901: column 'Echéance': "
                                     "not a date (expected DD/MM/YYYY): '31/13/2024'")
    assert rows(seeded, "--as-of", "2025-01-01") == before


def test_bad_amount_and_missing_number_are_named(cli: Cli, tsv: Callable[..., Path]) -> None:
    path = tsv("A\t\tA\t\t01/01/2024\tF-1\t\t\t10,0x\t10,00\t31/01/2024\t\t\t\t\t\t")
    err = cli(["import", "invoices", str(path)], ok=False).stderr
    assert f"{path}:2: column 'Total Fac.': not an amount: '10,0x'" in err
    path = tsv("A\t\tA\t\t01/01/2024\t\t\t\t10,00\t10,00\t31/01/2024\t\t\t\t\t\t", name="b.tsv")
    err = cli(["import", "invoices", str(path)], ok=False).stderr
    assert f"{path}:2: column 'N° Fac.': value is missing" in err


def test_unknown_column_is_refused(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("invoice_number,colour\nF-1,red\n", encoding="utf-8")
    err = cli(["import", "invoices", str(path)], ok=False).stderr
    assert f"{path}:1: unknown column 'colour' (column 2)" in err


def test_csv_and_json_with_english_names(cli: Cli, tmp_path: Path) -> None:
    csv_path = tmp_path / "inv.csv"
    csv_path.write_text(
        "customer_code,customer_name,invoice_number,invoice_date,due_date,total,remaining,level\n"
        "C1,Client One,F-10,2024-01-01,2024-01-31,1253.06,1253.06,1\n", encoding="utf-8")
    json_path = tmp_path / "inv.json"
    json_path.write_text(json.dumps([{
        "customer_code": "C2", "customer_name": "Client Two", "invoice_number": "F-11",
        "invoice_date": "2024-02-01", "due_date": "2024-03-01", "total": "99.90",
        "remaining": "99.90", "last_reminded_on": None}]), encoding="utf-8")
    cli(["import", "invoices", str(csv_path)])
    cli(["import", "invoices", str(json_path)])
    listed = {r["invoice_number"]: r for r in rows(cli, "--as-of", "2024-06-01")}
    assert listed["F-10"]["remaining"] == "1253.06" and listed["F-10"]["level"] == 1
    assert listed["F-11"]["customer_name"] == "Client Two"
    assert "1 253,06" in cli("list --as-of 2024-06-01").stdout

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"invoice_number": "F-12", "customer_code": "C2",
                                "invoice_date": "2024-02-01", "due_date": "2024-03-01",
                                "total": "1", "remaining": "lots"}]), encoding="utf-8")
    err = cli(["import", "invoices", str(bad)], ok=False).stderr
    assert f"{bad}: record 1: column 'remaining': not an amount: 'lots'" in err


def test_payments_make_an_invoice_leave_the_table(seeded: Cli, tmp_path: Path) -> None:
    path = tmp_path / "payments.csv"
    path.write_text("invoice_number;paid_on;amount;method;reference\n"
                    "COD_F1023;25/11/2024;253,06;Chèque;CHQ 1234567\n", encoding="utf-8")
    assert "1 payments recorded" in seeded(["import", "payments", str(path)]).stdout
    assert "0 payments recorded, 1 already known" in seeded(["import", "payments", str(path)]).stdout
    assert [r["invoice_number"] for r in rows(seeded, "--as-of", "2024-12-01")] == ["COD_F1026"]
    assert "Règlement de 253,06 € reçu le 25/11/2024 (soldée)" in seeded("history COD_F1023").stdout


def test_identical_payments_in_one_file_are_two_payments(seeded: Cli, tmp_path: Path) -> None:
    path = tmp_path / "payments.csv"
    path.write_text("invoice_number;paid_on;amount\n"
                    "COD_F1026;25/11/2024;50,00\nCOD_F1026;25/11/2024;50,00\n", encoding="utf-8")
    assert "2 payments recorded, 0 already known" in seeded(["import", "payments", str(path)]).stdout
    assert "0 payments recorded, 2 already known" in seeded(["import", "payments", str(path)]).stdout
    (row,) = rows(seeded, "--as-of", "2024-12-01", "--customer", "INT01")
    assert row["remaining"] == "580.40"
    # By hand, the same amount on the same day is a second payment...
    assert "530.40 still due" in seeded("pay COD_F1026 50 --on 25/11/2024").stdout
    # ...unless its reference says it is the same one.
    seeded("pay COD_F1026 10 --reference CHQ-9")
    err = seeded("pay COD_F1026 10 --reference CHQ-9", ok=False).stderr
    assert "a payment with reference 'CHQ-9' is already recorded" in err


def test_pay_command_partial_then_full(seeded: Cli) -> None:
    assert "180.40 still due" in seeded("pay COD_F1026 500,00 --on 2024-12-01").stdout
    (row,) = rows(seeded, "--as-of", "2024-12-02", "--customer", "INT01")
    assert row["remaining"] == "180.40"
    err = seeded("pay COD_F1026 200 --on 2024-12-02", ok=False).stderr
    assert "payment of 200.00 exceeds the 180.40 still due" in err
    assert "paid in full" in seeded("pay COD_F1026 --on 2024-12-03").stdout
    assert rows(seeded, "--as-of", "2024-12-04", "--customer", "INT01") == []


def test_customers_import_sets_contact_details_and_kind(seeded: Cli) -> None:
    card = seeded("customer INT01 --as-of 22/11/2024").stdout
    assert "INT01 — INTEL (professionnel, fr)" in card
    assert "2 avenue de Paris" in card and "78280 Guyancourt" in card
    assert "Total dû : 680,40 €" in card
    assert "DANIERE FLORENCE (particulier, fr)" in seeded("customer DAN01").stdout


def test_customer_naming_an_unknown_policy_is_refused(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    path.write_text("code,name,policy\nC1,Client One,default\nC2,Client Two,vip-typo\n",
                    encoding="utf-8")
    err = cli(["import", "customers", str(path)], ok=False).stderr
    assert f"{path}:3: column 'policy': no policy named 'vip-typo' in the settings" in err
    assert "no customer with code 'C1'" in cli("customer C1", ok=False).stderr


def test_remaining_above_total_is_refused(cli: Cli, tsv: Callable[..., Path]) -> None:
    path = tsv("A\t\tA\t\t01/01/2024\tF-1\t\t\t100,00\t150,00\t31/01/2024\t\t\t\t\t\t")
    err = cli(["import", "invoices", str(path)], ok=False).stderr
    assert f"{path}:2: column 'Reste': 150.00 remaining is more than the invoice's total 100.00" in err


def test_reimporting_customers_reports_them_unchanged(seeded: Cli) -> None:
    out = seeded(["import", "customers", str(SAMPLE / "customers.csv")]).stdout
    assert "0 new customers, 0 updated, 5 unchanged" in out
