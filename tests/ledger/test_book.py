"""Looking up the book by hand: codes and numbers as people type them."""

from __future__ import annotations

from pathlib import Path

from helpers import Cli


def test_a_code_or_a_number_is_found_whatever_its_case_and_spaces(seeded: Cli) -> None:
    assert seeded("customer int01").stdout.startswith("INT01 — INTEL")
    assert seeded(["customer", " Int01 "]).stdout.startswith("INT01 — INTEL")
    assert "COD_F1026" in seeded(["invoice", "cod_f1026 "]).stdout
    seeded(["pay", "cod_f1026", "80.40"])
    assert "reste 600,00 €" in seeded("history COD_F1026").stdout


def test_codes_that_differ_only_by_case_are_not_guessed(seeded: Cli, tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    path.write_text("code;name\nabc1;Petit\nABC1;Grand\n", encoding="utf-8")
    seeded(["import", "customers", str(path)])
    assert seeded("customer ABC1").stdout.startswith("ABC1 — Grand")
    assert seeded("customer abc1").stdout.startswith("abc1 — Petit")
    refused = seeded("customer Abc1", ok=False)
    assert refused.exit_code == 1 and "no customer with code 'Abc1'" in refused.stderr
