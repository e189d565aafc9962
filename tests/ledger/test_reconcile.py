"""Following the books: complete exports, payments never undone, a history of every change.

Each test drives ``relances`` as a user would, on SQLite and on PostgreSQL,
with files in the ERP's own layout.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import Cli, write_settings

TSV = Callable[..., Path]


def row(number: str, reste: str = "100,00", *, total: str = "100,00", code: str = "ACME",
        due: str = "01/01/2024", n1: str = "", level: str = "") -> str:
    return (f"{code}\t{code}\t{code} SARL\t\t01/12/2023\t{number}\tPC\tPC\t{total}\t{reste}\t"
            f"{due}\tVirement\t1\t{n1}\t(i)\t\t{level}")


def listed(cli: Cli, as_of: str = "2025-01-01") -> dict[str, dict[str, object]]:
    out = json.loads(cli(["list", "--format", "json", "--as-of", as_of]).stdout)
    return {r["invoice_number"]: r for r in out}  # type: ignore[misc]


def history(cli: Cli, number: str) -> str:
    return cli(["history", number]).stdout


def test_a_complete_export_settles_what_it_no_longer_lists(cli: Cli, tsv: TSV) -> None:
    cli(["import", "invoices", str(tsv(row("F1"), row("F2"), row("F3"), name="monday.tsv"))])
    tuesday = tsv(row("F1"), row("F2"), name="tuesday.tsv")
    out = cli(["import", "invoices", "--complete", str(tuesday)]).stdout
    assert "3 rows" not in out and "2 rows: 0 new, 0 updated, 2 unchanged" in out
    assert "1 settled in the books" in out
    assert set(listed(cli)) == {"F1", "F2"}
    assert "Soldée dans la gestion commerciale — absente de l'export tuesday.tsv" \
        in history(cli, "F3")
    # Settled once: the same file again settles nothing more.
    again = cli(["import", "invoices", "--complete", str(tuesday)]).stdout
    assert "settled" not in again and "2 unchanged" in again


def test_without_complete_an_absent_invoice_stays_open(cli: Cli, tsv: TSV) -> None:
    cli(["import", "invoices", str(tsv(row("F1"), row("F2"), name="a.tsv"))])
    cli(["import", "invoices", str(tsv(row("F1"), name="b.tsv"))])
    assert set(listed(cli)) == {"F1", "F2"}


def test_a_setting_makes_the_export_complete(tmp_path: Path, database_url: str, tsv: TSV) -> None:
    cli = Cli(write_settings(tmp_path / "settings.yaml", {
        "database.url": database_url, "imports.invoices.complete": True}))
    cli("init")
    cli(["import", "invoices", str(tsv(row("F1"), row("F2"), name="a.tsv"))])
    cli(["import", "invoices", "--not-complete", str(tsv(row("F1"), name="b.tsv"))])
    assert set(listed(cli)) == {"F1", "F2"}
    assert "1 settled" in cli(["import", "invoices", str(tsv(row("F1"), name="c.tsv"))]).stdout
    assert set(listed(cli)) == {"F1"}


def test_a_truncated_file_is_refused_whole_unless_forced(cli: Cli, tsv: TSV) -> None:
    cli(["import", "invoices", str(tsv(*(row(f"F{i}") for i in range(1, 21)), name="all.tsv"))])
    truncated = tsv(*(row(f"F{i}") for i in range(1, 6)), row("F99"), name="cut.tsv")
    result = cli(["import", "invoices", "--complete", str(truncated)], ok=False)
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "relances: error: cut.tsv: refused: as a complete list of open invoices, it would "
        "settle 15 of the 20 open invoices (75 %, more than 20 %); if the file is whole, "
        "give --force")
    assert len(listed(cli)) == 20  # nothing written, not even the new F99
    out = cli(["import", "invoices", "--complete", "--force", str(truncated)]).stdout
    assert "15 settled in the books" in out and "1 new" in out
    assert set(listed(cli)) == {f"F{i}" for i in range(1, 6)} | {"F99"}


def test_the_guard_lets_a_few_settle(cli: Cli, tsv: TSV) -> None:
    cli(["import", "invoices", str(tsv(*(row(f"F{i}") for i in range(1, 6)), name="all.tsv"))])
    out = cli(["import", "invoices", "--complete", str(tsv(row("F1"), name="one.tsv"))]).stdout
    assert "4 settled in the books" in out  # 80 % but fewer than 10 invoices


def test_dry_run_says_what_would_change_and_writes_nothing(cli: Cli, tsv: TSV) -> None:
    cli(["import", "invoices", str(tsv(row("F1"), row("F2"), name="a.tsv"))])
    newer = tsv(row("F1", "40,00", due="15/01/2024"), name="b.tsv")
    out = cli(["import", "invoices", "--complete", "--dry-run", str(newer)]).stdout
    assert "F1: Reste 100,00 € → 40,00 €, Échéance 01/01/2024 → 15/01/2024" \
        in out.replace("\u202f", " ")
    assert "F2: Soldée dans la gestion commerciale — absente de l'export b.tsv" in out
    assert "dry run, nothing written: 1 rows: 0 new, 1 updated" in out
    assert listed(cli)["F1"]["remaining"] == "100.00" and "F2" in listed(cli)
    assert "Import b.tsv" not in history(cli, "F1")


def test_every_change_writes_old_and_new_values_and_the_file(cli: Cli, tsv: TSV) -> None:
    cli(["import", "invoices", str(tsv(row("F1", "680,40", total="680,40",
                                          due="08/02/2024"), name="morning.tsv"))])
    newer = tsv(row("F1", "480,40", total="680,40", due="15/03/2024"), name="evening.tsv")
    assert "1 updated" in cli(["import", "invoices", str(newer)]).stdout
    steps = history(cli, "F1").replace("\u202f", " ")
    assert "Import evening.tsv : Reste 680,40 € → 480,40 €, Échéance 08/02/2024 → 15/03/2024" \
        in steps
    before = history(cli, "F1")
    assert "0 updated, 1 unchanged" in cli(["import", "invoices", str(newer)]).stdout
    assert history(cli, "F1") == before  # an unchanged row writes nothing


def test_a_payment_recorded_here_survives_the_morning_export(cli: Cli, tsv: TSV) -> None:
    morning = tsv(row("F1", "680,40", total="680,40"), name="morning.tsv")
    cli(["import", "invoices", str(morning)])
    cli("pay F1 100 --on 2024-11-20")
    out = cli(["import", "invoices", str(morning)]).stdout
    assert "1 kept the lower balance (a payment recorded here is not in the file yet)" in out
    assert listed(cli)["F1"]["remaining"] == "580.40"
    # The books catch up: nothing is counted twice.
    caught_up = tsv(row("F1", "580,40", total="680,40"), name="caught-up.tsv")
    out = cli(["import", "invoices", str(caught_up)]).stdout
    assert "kept the lower" not in out and "1 unchanged" in out
    assert listed(cli)["F1"]["remaining"] == "580.40"
    # Another payment in the books: a lower Reste is always taken.
    cli(["import", "invoices", str(tsv(row("F1", "500,00", total="680,40"), name="later.tsv"))])
    assert listed(cli)["F1"]["remaining"] == "500.00"


def test_a_higher_reste_over_a_payment_here_is_reported_and_applied_only_if_trusted(
        cli: Cli, tsv: TSV) -> None:
    cli(["import", "invoices", str(tsv(row("F1", "680,40", total="680,40"), name="a.tsv"))])
    cli("pay F1 100 --on 2024-11-20")
    cli(["import", "invoices", str(tsv(row("F1", "580,40", total="680,40"), name="b.tsv"))])
    reversed_ = tsv(row("F1", "680,40", total="680,40"), name="reversed.tsv")
    out = cli(["import", "invoices", str(reversed_)]).stdout
    assert "1 higher Reste not applied, a payment being recorded here (F1): --trust-file " \
           "applies them" in out
    assert listed(cli)["F1"]["remaining"] == "580.40"
    out = cli(["import", "invoices", "--trust-file", str(reversed_)]).stdout
    assert "1 higher Reste applied (--trust-file)" in out
    assert listed(cli)["F1"]["remaining"] == "680.40"
    assert "Import reversed.tsv : Reste 580,40 € → 680,40 €" \
        in history(cli, "F1").replace("\u202f", " ")


def test_a_paid_invoice_stays_paid_when_a_stale_export_lists_it(cli: Cli, tsv: TSV) -> None:
    export = tsv(row("F1", "253,06", total="253,06"), name="export.tsv")
    cli(["import", "invoices", str(export)])
    cli("pay F1 --on 2024-11-25")
    cli(["import", "invoices", str(export)])
    assert "F1" not in listed(cli)


def test_the_exports_level_applies_only_to_invoices_never_reminded_here(
        cli: Cli, tsv: TSV) -> None:
    cli(["import", "invoices", str(tsv(row("F1", level="1"),
                                       row("F2", level="1", n1="01/06/2024"), name="a.tsv"))])
    # The archive channel: Relances itself reminds F1.
    assert "1 sent (1 by archive)" in cli("send --invoice F1 --as-of 2024-11-22").stdout
    newer = tsv(row("F1", level="2", n1="20/11/2024"), row("F2", level="2", n1="20/11/2024"),
                name="b.tsv")
    cli(["import", "invoices", str(newer)])
    rows = listed(cli)
    assert (rows["F1"]["level"], rows["F1"]["last_reminded_on"]) == (1, "2024-11-22")
    assert (rows["F2"]["level"], rows["F2"]["last_reminded_on"]) == (2, "2024-11-20")
    assert "niveau 1 → 2, Relancé le 01/06/2024 → 20/11/2024" in history(cli, "F2")
    # A level is never lowered by an import.
    cli(["import", "invoices", str(tsv(row("F2", level="1", n1="20/11/2024"), name="c.tsv"))])
    assert listed(cli)["F2"]["level"] == 2


@pytest.mark.parametrize("column, value, kind", [
    ("SIREN", "732 829 320", "professionnel"),
    ("SIRET", "73282932000074", "professionnel"),
    ("TVA", "FR40303265045", "professionnel"),
    ("Nature", "Administration", "acheteur public"),
    ("Nature", "particulier", "particulier"),
])
def test_a_column_of_the_export_says_who_the_customer_is(
        cli: Cli, tmp_path: Path, column: str, value: str, kind: str) -> None:
    path = tmp_path / "export.csv"
    path.write_text(f"Code;Nom;N° Fac.;Date Fac.;Echéance;Total Fac.;Reste;{column}\n"
                    f"C1;Client Un;F1;01/01/2024;31/01/2024;100,00;100,00;{value}\n",
                    encoding="utf-8")
    cli(["import", "invoices", str(path)])
    assert f"C1 — Client Un ({kind}, fr)" in cli("customer C1").stdout


def test_a_bad_siren_is_refused_with_its_line_and_column(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text("Code;Nom;N° Fac.;Date Fac.;Echéance;Total Fac.;Reste;SIREN\n"
                    "C1;Client Un;F1;01/01/2024;31/01/2024;100,00;100,00;732829321\n",
                    encoding="utf-8")
    err = cli(["import", "invoices", str(path)], ok=False).stderr
    assert f"{path}:2: column 'SIREN': not a valid SIREN or SIRET: '732829321'" in err
