"""Who is a business: the customer's kind decides what a formal notice may claim.

Penalties and the 40 € indemnity (L441-10, D441-5) are for businesses and
public buyers; a consumer owes neither, and a customer nobody described is
not charged either, with a warning until somebody says what they are.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import SAMPLE, Cli, write_settings
from pypdf import PdfReader

from relances.daemon.ledger.kinds import parse_kind, parse_siren, parse_vat

CHARGES = "Indemnité forfaitaire pour frais de recouvrement"
ROW = ("{code}\t{code}\t{code} SARL\t\t01/12/2023\t{number}\tPC\tPC\t100,00\t100,00\t"
       "01/01/2024\tVirement\t1\t\t(i)\t\t3")


def notice_text(cli: Cli, tmp_path: Path, number: str) -> str:
    """The level-3 letter of an invoice, as its reader sees it."""
    copy = tmp_path / "invoices" / f"{number}.pdf"
    copy.parent.mkdir(exist_ok=True)
    shutil.copyfile(SAMPLE / "invoices" / "COD_F1026.pdf", copy)
    out = tmp_path / f"{number}-notice.pdf"
    cli(["preview", number, "--as-of", "2024-06-01", "-o", str(out)])
    page = PdfReader(out).pages[0].extract_text() or ""
    return " ".join(page.split())


def test_an_invoice_only_import_makes_customers_of_unknown_kind(
        cli: Cli, tsv: Callable[..., Path], tmp_path: Path) -> None:
    cli(["import", "invoices", str(tsv(ROW.format(code="ACME", number="F1")))])
    assert "ACME — ACME SARL (nature inconnue, fr)" in cli("customer ACME").stdout
    assert CHARGES not in notice_text(cli, tmp_path, "F1")
    warning = ("warning: 1 client de nature inconnue : pénalités et indemnité non mentionnées "
               "(ACME; `relances customer CODE --kind business|public|consumer`)")
    assert warning in cli("list --as-of 2024-06-01").stderr
    assert warning in cli("check-config").stderr
    assert warning in cli("send --dry-run --as-of 2024-06-01").stderr


@pytest.mark.parametrize("kind, label, charged", [
    ("business", "professionnel", True), ("public", "acheteur public", True),
    ("consumer", "particulier", False)])
def test_saying_the_kind_by_hand(cli: Cli, tsv: Callable[..., Path], tmp_path: Path,
                                 kind: str, label: str, charged: bool) -> None:
    cli(["import", "invoices", str(tsv(ROW.format(code="ACME", number="F1")))])
    assert f"ACME: nature inconnue → {label}" in cli(f"customer ACME --kind {kind}").stdout
    assert f"ACME — ACME SARL ({label}, fr)" in cli("customer ACME").stdout
    assert (CHARGES in notice_text(cli, tmp_path, "F1")) is charged
    assert "nature inconnue" not in cli("list --as-of 2024-06-01").stderr
    card = cli("customer ACME").stdout
    assert f"Nature du client modifiée à la main : nature inconnue → {label}  tester" in card
    assert f"ACME: already {label}" in cli(f"customer ACME --kind {kind}").stdout


def test_a_seller_who_sells_only_to_businesses_says_so_once(
        tmp_path: Path, database_url: str, tsv: Callable[..., Path]) -> None:
    cli = Cli(write_settings(tmp_path / "settings.yaml", {
        "database.url": database_url, "customers.default_kind": "business"}))
    cli("init")
    cli(["import", "invoices", str(tsv(ROW.format(code="ACME", number="F1")))])
    assert "(professionnel, fr)" in cli("customer ACME").stdout
    assert CHARGES in notice_text(cli, tmp_path, "F1")
    assert "nature inconnue" not in cli("list --as-of 2024-06-01").stderr


def test_a_customers_file_with_a_siren_column(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    path.write_text("code;name;siren;vat\nA1;Alpha;732 829 320;\nB1;Beta;;FR40303265045\n"
                    "C1;Gamma;;\n", encoding="utf-8")
    assert "3 new customers" in cli(["import", "customers", str(path)]).stdout
    assert "(professionnel, fr)" in cli("customer A1").stdout
    assert "SIREN      732829320" in cli("customer A1").stdout
    assert "TVA        FR40303265045" in cli("customer B1").stdout
    assert "(nature inconnue, fr)" in cli("customer C1").stdout


def test_a_kind_column_wins_over_a_siren(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    path.write_text("code;name;siret;kind\nM1;Mairie de Lyon;21690123100011;public\n",
                    encoding="utf-8")
    cli(["import", "customers", str(path)])
    assert "(acheteur public, fr)" in cli("customer M1").stdout


SIREN_HEADER = ("Code\tAffilié\tNom\temail\tDate Fac.\tN° Fac.\tAffect.\tRepr.\tTotal Fac.\t"
                "Reste\tEchéance\tEch.\tRglmt.\tN-1\tRelancé le\tInfo Réin\tN\tSIREN")


def test_a_siren_makes_a_business_only_of_a_customer_of_unknown_kind(
        cli: Cli, tsv: Callable[..., Path], tmp_path: Path) -> None:
    """A public buyer, or a sole trader a person set as a consumer, has a SIREN too:
    a later file's SIREN column must not make them a business (and charge a consumer)."""
    cli(["import", "invoices", str(tsv(ROW.format(code="ACME", number="F1"),
                                       ROW.format(code="MAIRIE", number="F2"),
                                       ROW.format(code="DUPONT", number="F3")))])
    cli("customer MAIRIE --kind public")
    cli("customer DUPONT --kind consumer")
    export = tmp_path / "with-siren.tsv"
    rows = [ROW.format(code=code, number=number) + f"\t{siren}" for code, number, siren in (
        ("ACME", "F1", "732829320"), ("MAIRIE", "F2", "216901231"), ("DUPONT", "F3", "552120222"))]
    export.write_text("\n".join([SIREN_HEADER, *rows]) + "\n", encoding="utf-8")
    cli(["import", "invoices", str(export)])
    assert "(professionnel, fr)" in cli("customer ACME").stdout  # was unknown
    assert "(acheteur public, fr)" in cli("customer MAIRIE").stdout
    assert "(particulier, fr)" in cli("customer DUPONT").stdout
    assert CHARGES not in notice_text(cli, tmp_path, "F3")
    customers = tmp_path / "customers.csv"
    customers.write_text("code;name;siren\nDUPONT;Dupont Jean;552 120 222\n", encoding="utf-8")
    cli(["import", "customers", str(customers)])
    assert "(particulier, fr)" in cli("customer DUPONT").stdout


def test_kinds_words_and_numbers() -> None:
    assert [parse_kind(w) for w in ("Professionnel", "B2B", "administration", "Particulier")] \
        == ["business", "business", "public", "consumer"]
    assert parse_siren("732 829 320") == parse_siren("73282932000074") == "732829320"
    assert parse_vat("FR 40 303 265 045") == "FR40303265045"
    for bad, parse in (("732829321", parse_siren), ("FR00303265045", parse_vat),
                       ("martian", parse_kind)):
        with pytest.raises(ValueError):
            parse(bad)
