"""Reading MT940 statements: a French bank's (``/NAME/``, ``/REMI/``, ``/IBAN/`` in ``:86:``, in
a SWIFT envelope) and a German one's (``?20``..``?34`` sub-fields), both in Windows-1252."""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal
from pathlib import Path

import pytest
from helpers import ROOT
from schwifty import IBAN
from stdnum import iso11649

from relances.daemon.bank import mt940
from relances.daemon.bank.statements import Statement
from relances.daemon.errors import BankError

DATA = ROOT / "tests" / "bank" / "data"
FRENCH = DATA / "mt940_french.sta"
GERMAN = DATA / "mt940_german.sta"
ACCOUNT = "FR7630004005500001234567840"
PAYER = "FR7630003012340005001234509"
ATELIER = "FR7610278060390002012340156"
MUSTERMANN = "DE12500105170648489890"
RF = "RF18539007547034"


def read(path: Path, data: bytes | None = None) -> Statement:
    return mt940.read(path, path.read_bytes() if data is None else data)


def refusal(path: Path, data: bytes) -> str:
    """The one line an MT940 file is refused with."""
    path.write_bytes(data)
    with pytest.raises(BankError) as caught:
        mt940.read(path, data)
    message = str(caught.value)
    assert "\n" not in message
    return message


def mt940_file(*lines: str) -> bytes:
    return "\r\n".join(lines).encode("cp1252") + b"\r\n"


def test_the_fixtures_hold_valid_ibans_and_references() -> None:
    for iban in (ACCOUNT, PAYER, ATELIER, MUSTERMANN):
        assert IBAN(iban).validate()
    assert iso11649.is_valid(RF) and iso11649.is_valid("RF73FA2024012")
    assert "RÈGLEMENT".encode("cp1252") in FRENCH.read_bytes()


def test_french_statements_in_a_swift_envelope() -> None:
    statement = read(FRENCH)
    assert (statement.source, statement.format) == ("mt940_french.sta", "mt940")
    assert statement.account_iban == ACCOUNT
    assert statement.statement_id == "00015/001..00016/001"  # :28C: of both statements
    assert statement.date == dt.date(2024, 1, 16)  # the last :62F:
    assert [e.amount for e in statement.entries] == [
        Decimal("1250.00"), Decimal("-84.37"), Decimal("980.40"),
        Decimal("150.00"), Decimal("150.00"), Decimal("84.37"), Decimal("-980.40")]
    assert [e.position for e in statement.entries] == list(range(1, 8))
    assert [e.where for e in statement.entries] == [
        f"mt940_french.sta:{n}" for n in (6, 9, 11, 21, 23, 25, 27)]


def test_french_86_gives_name_iban_and_remittance() -> None:
    first = read(FRENCH).entries[0]
    assert first.booked_on == dt.date(2024, 1, 15) and first.value_date == dt.date(2024, 1, 15)
    assert first.counterparty == "SOCIETE GENERALE ETIENNE"
    # The IBAN is cut by the 65-character line: the full line goes on without a space.
    assert first.counterparty_iban == PAYER
    assert first.text == "RÈGLEMENT FA-2024-008"  # /REMI/, its accent read as Windows-1252
    assert first.end_to_end_id == "FA2024008-20240115"
    assert first.bank_reference == "24015100000142"
    assert first.identity == f"{ACCOUNT}:24015100000142"


def test_rf_reference_in_the_remittance() -> None:
    entry = read(FRENCH).entries[2]
    assert entry.text == f"REGLEMENT {RF}"
    assert entry.reference == RF
    assert entry.counterparty == "ATELIER MERIDIEN SARL" and entry.counterparty_iban == ATELIER


def test_reversals_are_signed_as_what_they_do() -> None:
    entries = read(FRENCH).entries
    rejected_debit, recalled_credit = entries[5], entries[6]
    # RD: a direct debit given back, money in; RC: a credit taken back, money out.
    assert rejected_debit.amount == Decimal("84.37") and rejected_debit.is_credit
    assert recalled_credit.amount == Decimal("-980.40") and not recalled_credit.is_credit
    # A statement's own :86: (after :64:) is not added to its last entry's text.
    assert recalled_credit.text == f"RETOUR VIREMENT {RF}"


def test_nonref_entries_get_hash_identities_and_two_equal_ones_stay_two() -> None:
    once, again = read(FRENCH), read(FRENCH)
    first, second = once.entries[3:5]
    assert (first.booked_on, first.amount, first.text) == (second.booked_on, second.amount, second.text)
    assert first.bank_reference is None and second.bank_reference is None
    assert first.identity.startswith("h:") and second.identity.startswith("h:")
    assert first.identity != second.identity
    assert [e.identity for e in once.entries] == [e.identity for e in again.entries]


def test_german_structured_86() -> None:
    statement = read(GERMAN)
    assert statement.account_iban is None  # :25: is BLZ/Konto, not an IBAN
    assert statement.statement_id == "00023/001"
    assert statement.date == dt.date(2024, 1, 30)
    credit, debit, bakery = statement.entries
    assert credit.amount == Decimal("2500.00")
    assert credit.text == "Rechnung RE-2024-0042 vom 15.01.2024"  # SVWZ+ over ?21 and ?22
    assert credit.counterparty == "MUSTERMANN BETEILIGUNGSGESELLSCHAFT MBH"  # ?32 + ?33
    assert credit.counterparty_iban == MUSTERMANN  # ?31
    assert credit.end_to_end_id == "E2E-2024-0042"  # EREF+
    assert credit.identity.startswith("h:")  # NONREF, no bank reference
    assert debit.amount == Decimal("-119.00") and debit.counterparty == "TELEKOM DEUTSCHLAND GMBH"
    assert debit.text == "Telefon Januar" and debit.bank_reference == "DD2401300001"
    assert debit.identity == "37040044/0532013000:DD2401300001"
    assert bakery.counterparty == "Bäckerei Schmidt"
    assert bakery.reference == "RF73FA2024012"


def test_looks_like() -> None:
    assert mt940.looks_like(FRENCH.read_bytes()) and mt940.looks_like(GERMAN.read_bytes())
    assert not mt940.looks_like((DATA / "ofx_sgml_cp1252.ofx").read_bytes())
    assert not mt940.looks_like((DATA / "ofx_xml.ofx").read_bytes())
    assert not mt940.looks_like(b"Date;Libelle;Montant\r\n15/01/2024;VIR;1250,00\r\n")
    assert not mt940.looks_like(b"%PDF-1.4\n")


def test_free_text_86_lines_are_joined_at_the_swift_width(tmp_path: Path) -> None:
    full = ":86:VIREMENT RECU DE LA SOCIETE DUPONT ET FILS POUR FACTURE FA-20"
    assert len(full) == 65
    data = mt940_file(":20:REF1", f":25:{ACCOUNT}", ":28C:1/1", ":60F:C240201EUR0,00",
                      ":61:240201C10,00NTRFFA-2024-011", full, "24-011 ET LA", "FACTURE FA-2024-012",
                      ":62F:C240201EUR10,00")
    entry = read(tmp_path / "free.sta", data).entries[0]
    assert entry.text == ("VIREMENT RECU DE LA SOCIETE DUPONT ET FILS POUR FACTURE FA-2024-011 "
                          "ET LA FACTURE FA-2024-012")
    assert entry.counterparty == "" and entry.counterparty_iban is None
    assert entry.reference == "FA-2024-011"  # the :61: customer reference: the account owner's


def test_a_bank_reference_given_twice_is_no_identity(tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    data = mt940_file(":20:REF1", f":25:{ACCOUNT}", ":28C:1/1", ":60F:C240201EUR0,00",
                      ":61:240201C10,00NTRFNONREF//BATCH7", ":86:/NAME/A/REMI/FA-1/",
                      ":61:240201C10,00NTRFNONREF//BATCH7", ":86:/NAME/B/REMI/FA-2/",
                      ":62F:C240201EUR20,00")
    entries = read(tmp_path / "batch.sta", data).entries
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        f"{tmp_path / 'batch.sta'}: bank reference BATCH7 is given to 2 entries: they are told apart "
        f"by their content"]
    assert [e.bank_reference for e in entries] == ["BATCH7", "BATCH7"]
    assert all(e.identity.startswith("h:") for e in entries)
    assert entries[0].identity != entries[1].identity


def test_refused_missing_account(tmp_path: Path) -> None:
    path = tmp_path / "no25.sta"
    data = FRENCH.read_bytes().replace(f":25:{ACCOUNT}\r\n:28C:00016".encode(), b":28C:00016")
    assert refusal(path, data) == f"{path}:17: statement STMT240116: no :25: line (the account)"


def test_refused_when_it_does_not_add_up(tmp_path: Path) -> None:
    path = tmp_path / "sum.sta"
    data = FRENCH.read_bytes().replace(b":62F:C240116EUR11550,00", b":62F:C240116EUR11505,00")
    assert refusal(path, data) == (
        f"{path}:30: statement STMT240116 does not add up: opening balance 12146.03 EUR + 4 entries "
        f"= 11550.00, but its closing balance is 11505.00 EUR")


def test_refused_missing_fields(tmp_path: Path) -> None:
    path = tmp_path / "fields.sta"
    data = FRENCH.read_bytes()
    assert refusal(path, data.replace(b":20:STMT240115\r\n", b"")) == (
        f"{path}:2: :25: before the first :20: line: an MT940 statement starts with :20:, its reference")
    assert refusal(path, data.replace(b":60F:C240112EUR10000,00\r\n", b"")) == (
        f"{path}:2: statement STMT240115: no :60F: line (its opening balance)")
    assert refusal(path, data.replace(b":62F:C240115EUR12146,03\r\n", b"")) == (
        f"{path}:2: statement STMT240115: no :62F: line (its closing balance)")


def test_refused_unreadable_fields(tmp_path: Path) -> None:
    path = tmp_path / "bad.sta"
    data = FRENCH.read_bytes()
    assert refusal(path, data.replace(b":61:2401150115D84,37", b":61:2401150115X84,37")) == (
        f"{path}:9: :61: '2401150115X84,37NDDTNONREF//24015100000150' does not read as a statement "
        f"line (YYMMDD[MMDD], C/D/RC/RD, amount, type, reference[//bank reference])")
    assert refusal(path, data.replace(b":61:2401150115D84,37", b":61:2413150115D84,37")) == (
        f"{path}:9: :61: a date that does not exist (month must be in 1..12)")
    assert refusal(path, data.replace(b":61:2401150115D84,37", b":61:2401150115D84,3,7")) == (
        f"{path}:9: :61: an amount that is not a number")


def test_refused_several_accounts(tmp_path: Path) -> None:
    path = tmp_path / "two.sta"
    second = f":25:{ACCOUNT}\r\n:28C:00016"
    data = FRENCH.read_bytes().replace(second.encode(), second.replace(ACCOUNT, PAYER).encode())
    assert refusal(path, data) == (
        f"{path}: statements of 2 accounts ({PAYER}, {ACCOUNT}) in one file: export one account per file")


def test_refused_plainly_something_else(tmp_path: Path) -> None:
    path = tmp_path / "releve.sta"
    assert refusal(path, b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n") == (
        f"{path}: not an MT940 statement: no :20: line; it starts with '%PDF-1.4'")
    assert refusal(path, (DATA / "ofx_xml.ofx").read_bytes()) == (
        f"{path}: not an MT940 statement: no :20: line; it starts with "
        f"'<?xml version=\"1.0\" encoding=\"UTF-8\" st…'")
    assert refusal(path, b"") == f"{path}: not an MT940 statement: no :20: line; the file is empty"
