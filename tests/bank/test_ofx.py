"""Reading OFX statements: a French bank's OFX 1.02 SGML export in Windows-1252, an OFX 2.1.1 XML one."""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal
from pathlib import Path

import pytest
from helpers import ROOT
from schwifty import IBAN
from stdnum import iso11649

from relances.daemon.bank import ofx
from relances.daemon.bank.statements import Statement
from relances.daemon.errors import BankError

DATA = ROOT / "tests" / "bank" / "data"
SGML = DATA / "ofx_sgml_cp1252.ofx"
XML = DATA / "ofx_xml.ofx"
MT940 = DATA / "mt940_french.sta"
XML_IBAN = "FR7630003012340005001234509"


def read(path: Path, data: bytes | None = None) -> Statement:
    return ofx.read(path, path.read_bytes() if data is None else data)


def refusal(path: Path, data: bytes) -> str:
    """The one line an OFX file is refused with."""
    path.write_bytes(data)
    with pytest.raises(BankError) as caught:
        ofx.read(path, data)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_the_sgml_export_is_windows_1252_with_french_accents() -> None:
    data = SGML.read_bytes()
    assert b"CHARSET:1252" in data and "SOCIÉTÉ".encode("cp1252") in data
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")


def test_sgml_statement_in_cp1252() -> None:
    statement = read(SGML)
    assert (statement.source, statement.format) == ("ofx_sgml_cp1252.ofx", "ofx")
    # BANKACCTFROM holds the RIB's pieces, not an IBAN: none is made up.
    assert statement.account_iban is None
    assert statement.date == dt.date(2024, 1, 31)  # LEDGERBAL/DTASOF
    assert [e.amount for e in statement.entries] == [
        Decimal("1250.00"), Decimal("-84.37"), Decimal("150.00"), Decimal("150.00"),
        Decimal("300.00"), Decimal("-42.10")]
    assert [e.is_credit for e in statement.entries] == [True, False, True, True, True, False]
    assert [e.position for e in statement.entries] == [1, 2, 3, 4, 5, 6]
    first, debit = statement.entries[0], statement.entries[1]
    assert first.booked_on == dt.date(2024, 1, 15) and first.value_date == dt.date(2024, 1, 14)
    assert first.counterparty == "SOCIÉTÉ GÉNÉRALE ÉTIENNE"
    assert first.text == "VIR SEPA RECU /DE SOCIETE GENERALE ETIENNE /MOTIF FA-2024-008"
    assert first.currency == "EUR"
    assert first.where == "ofx_sgml_cp1252.ofx:40"
    assert debit.text == "Électricité janvier – échéance n°1"
    assert debit.counterparty == "PRLV SEPA EDF"


def test_sgml_label_without_memo_names_the_payer_and_is_the_text() -> None:
    transfer = read(SGML).entries[2]
    # NAME holds the bank's whole label (longer than OFX's 32 characters, kept), &amp; unescaped.
    assert transfer.text == "VIR SEPA RECU /DE DUPONT & FILS /MOTIF FA-2024-011"
    assert transfer.counterparty == "DUPONT & FILS"


def test_sgml_cheque_and_card_give_the_bank_reference_and_the_written_day() -> None:
    cheque, card = read(SGML).entries[4:]
    assert cheque.bank_reference == "7654321"  # CHECKNUM
    assert cheque.amount == Decimal("300.00")  # TRNAMT 300,00: a comma
    # DTPOSTED 20240122000000.000[+1:CET] is the 22nd, although it is the 21st in UTC.
    assert cheque.booked_on == dt.date(2024, 1, 22)
    assert cheque.text == "REMISE 1 CHQ BOULANGERIE FRANÇOISE"
    assert card.bank_reference == "CB4471"  # REFNUM


def test_fitid_is_the_identity_stable_across_reads() -> None:
    once, again = read(SGML), read(SGML)
    assert [e.identity for e in once.entries] == [e.identity for e in again.entries]
    assert once.entries[0].identity == "30004 00550 00012345678:2401500000142"
    assert len({e.identity for e in once.entries}) == 6


def test_two_equal_transfers_the_same_day_stay_two() -> None:
    third, fourth = read(SGML).entries[2:4]
    assert (third.booked_on, third.amount, third.text) == (fourth.booked_on, fourth.amount, fourth.text)
    assert third.identity.endswith(":2401800000051") and fourth.identity.endswith(":2401800000052")


def test_a_fitid_given_twice_is_no_identity(tmp_path: Path) -> None:
    data = SGML.read_bytes().replace(b"<FITID>2401800000052", b"<FITID>2401800000051")
    third, fourth = read(tmp_path / "twice.ofx", data).entries[2:4]
    assert third.identity.startswith("h:") and fourth.identity.startswith("h:")
    assert third.identity != fourth.identity


def test_an_overlapping_export_gives_the_same_identities(tmp_path: Path) -> None:
    data = SGML.read_bytes()
    start, end = data.index(b"<STMTTRN>"), data.index(b"<STMTTRN>", data.index(b"2401800000051") - 200)
    later = tmp_path / "later.ofx"
    later.write_bytes(data[:start] + data[end:])
    overlap = read(later)
    assert len(overlap.entries) == 4
    assert [e.identity for e in overlap.entries] == [e.identity for e in read(SGML).entries[2:]]


def test_ofx2_xml_statement() -> None:
    assert IBAN(XML_IBAN).formatted == "FR76 3000 3012 3400 0500 1234 509"
    statement = read(XML)
    assert statement.account_iban == XML_IBAN
    assert statement.date == dt.date(2024, 2, 29)
    credit, rent, small = statement.entries
    assert credit.amount == Decimal("980.40") and credit.counterparty == "ATELIER MÉRIDIEN SARL"
    assert credit.text == "Règlement facture FA-2024-019 réf. RF18 5390 0754 7034"
    assert credit.reference == "RF18539007547034" and iso11649.is_valid(credit.reference)
    assert credit.identity == f"{XML_IBAN}:FR24036000123"
    assert rent.amount == Decimal("-1200.00") and rent.counterparty == "SCI DES TILLEULS"  # PAYEE/NAME
    assert rent.bank_reference == "LOYER-2024-02" and rent.text == "Loyer février"
    assert small.counterparty == "GARAGE DUVAL & FILS" and small.reference is None
    assert [e.where for e in statement.entries] == ["ofx_xml.ofx:32", "ofx_xml.ofx:41", "ofx_xml.ofx:57"]


def test_looks_like(tmp_path: Path) -> None:
    assert ofx.looks_like(SGML.read_bytes()) and ofx.looks_like(XML.read_bytes())
    assert ofx.looks_like(b"\xef\xbb\xbf\r\n  " + SGML.read_bytes())
    assert ofx.looks_like(b"<OFX><SIGNONMSGSRSV1>")
    assert not ofx.looks_like(MT940.read_bytes())
    assert not ofx.looks_like(b'<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:'
                              b'camt.053.001.02">')
    assert not ofx.looks_like(b"%PDF-1.7\n") and not ofx.looks_like(b"")


def test_a_file_with_only_the_ofx_element_and_a_bom(tmp_path: Path) -> None:
    data = XML.read_bytes()
    body = data[data.index(b"<OFX>"):]
    assert len(read(tmp_path / "bare.ofx", body).entries) == 3
    assert read(tmp_path / "bom.ofx", b"\xef\xbb\xbf" + data).account_iban == XML_IBAN


def test_credit_card_statement(tmp_path: Path) -> None:
    data = XML.read_bytes().decode()
    bank = data[data.index("<BANKMSGSRSV1>"):data.index("</BANKMSGSRSV1>") + len("</BANKMSGSRSV1>")]
    card = (bank.replace("BANKMSGSRSV1", "CREDITCARDMSGSRSV1").replace("STMTTRNRS", "CCSTMTTRNRS")
            .replace("STMTRS", "CCSTMTRS")
            .replace("<BANKACCTFROM>\n          <BANKID>30003</BANKID>\n          <BRANCHID>01234</BRANCHID>",
                     "<CCACCTFROM>")
            .replace("<ACCTTYPE>CHECKING</ACCTTYPE>\n        </BANKACCTFROM>", "</CCACCTFROM>")
            .replace(XML_IBAN, "4970100012345678"))
    statement = read(tmp_path / "card.ofx", data.replace(bank, card).encode())
    assert statement.account_iban is None
    assert statement.entries[0].identity == "4970100012345678:FR24036000123"


def test_unknown_tags_are_logged_and_no_warning_escapes(tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    data = SGML.read_bytes().replace(b"<FITID>2401500000142", b"<FITID>2401500000142\r\n<XFOO>bar")
    with caplog.at_level(logging.DEBUG, logger="relances.daemon.bank.ofx"):
        statement = read(tmp_path / "extra.ofx", data)
    assert len(statement.entries) == 6
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warned == [f"{tmp_path / 'extra.ofx'}:40: transaction 1 (FITID 2401500000142): While parsing "
                      f"STMTTRN, encountered unknown tag XFOO; skipping."]
    long_name = [r.getMessage() for r in caplog.records if "exceeds max length=32" in r.getMessage()]
    assert len(long_name) == 2 and all(r.levelno == logging.DEBUG for r in caplog.records
                                      if "exceeds max length" in r.getMessage())


def test_entities_are_not_expanded(tmp_path: Path) -> None:
    data = XML.read_bytes().replace(
        b"<OFX>", b'<!DOCTYPE OFX [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n<OFX>', 1
    ).replace(b"GARAGE DUVAL &amp; FILS", b"&xxe;")
    assert read(tmp_path / "xxe.ofx", data).entries[2].counterparty == "&xxe;"


def test_refused_not_ofx(tmp_path: Path) -> None:
    path = tmp_path / "releve.ofx"
    csv = "Date;Libellé;Montant\r\n15/01/2024;VIR SEPA RECU;1250,00\r\n".encode("cp1252")
    assert refusal(path, csv) == f"{path}: not an OFX file: it starts with 'Date;Libellé;Montant'"
    assert refusal(path, b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n") == f"{path}: not an OFX file: a PDF document"
    assert refusal(path, MT940.read_bytes()).startswith(f"{path}: not an OFX file: ")


def test_refused_broken_transaction(tmp_path: Path) -> None:
    path = tmp_path / "broken.ofx"
    data = SGML.read_bytes()
    third = data.index(b"<FITID>2401800000051")
    bad_amount = data[:third].replace(b"<TRNAMT>150.00", b"<TRNAMT>15O.00") + data[third:]
    assert refusal(path, bad_amount) == (
        f"{path}:57: transaction 3 (FITID 2401800000051): TRNAMT '15O.00' is not an amount")
    no_date = data.replace(b"<DTPOSTED>20240116\r\n", b"")
    assert refusal(path, no_date) == f"{path}:49: transaction 2 (FITID 2401600000017): DTPOSTED is missing"
    bad_date = data.replace(b"<DTPOSTED>20240125", b"<DTPOSTED>25/01/2024")
    assert refusal(path, bad_date) == (
        f"{path}:80: transaction 6 (FITID 2402500000088): DTPOSTED '25/01/2024' is not an OFX date "
        f"(YYYYMMDD, then maybe HHMMSS)")
    both = data.replace(b"<NAME>PRLV SEPA EDF", b"<NAME>PRLV SEPA EDF\r\n<PAYEE><NAME>EDF<ADDR1>1 av. Wilson"
                        b"<CITY>Paris<STATE>75<POSTALCODE>92050<PHONE>0800000000</PAYEE>")
    assert refusal(path, both) == (
        f"{path}:49: transaction 2 (FITID 2401600000017): NAME and PAYEE given together, OFX allows one")
    no_fitid = data.replace(b"<FITID>2401500000142\r\n", b"")
    assert refusal(path, no_fitid) == f"{path}:40: transaction 1: FITID is missing"


def test_refused_not_well_formed(tmp_path: Path) -> None:
    path = tmp_path / "broken.ofx"
    unclosed = XML.read_bytes().replace(b"</PAYEE>", b"")
    assert refusal(path, unclosed) == f"{path}:56: not well-formed OFX: </STMTTRN> closes <PAYEE>"
    cut = SGML.read_bytes()[:1500]
    assert refusal(path, cut).startswith(f"{path}: not well-formed OFX: <")
    deep = SGML.read_bytes().replace(b"<OFX>", b"<OFX>" + b"<X>" * 100_000, 1)
    assert refusal(path, deep) == f"{path}:11: not well-formed OFX: elements nested more than 32 deep"


def test_refused_header_and_encoding(tmp_path: Path) -> None:
    path = tmp_path / "header.ofx"
    utf16 = SGML.read_bytes().replace(b"CHARSET:1252", b"CHARSET:UTF-16")
    assert refusal(path, utf16) == (f"{path}: the OFX header is not valid: Invalid OFX header - "
                                    f"'UTF-16' is not OneOf ('ISO-8859-1', '1252', 'NONE')")
    latin = XML.read_bytes().replace("Loyer février".encode(), "Loyer février".encode("cp1252"))
    assert refusal(path, latin) == f"{path}:55: not utf-8 text, the encoding its OFX header declares"


def test_refused_without_one_statement(tmp_path: Path) -> None:
    path = tmp_path / "statements.ofx"
    data = XML.read_bytes().decode()
    bank = data[data.index("<STMTTRNRS>"):data.index("</STMTTRNRS>") + len("</STMTTRNRS>")]
    other = bank.replace(XML_IBAN, "FR7630004005500001234567840")
    assert refusal(path, data.replace(bank, bank + other).encode()) == (
        f"{path}: 2 statements in one OFX file (accounts {XML_IBAN}, FR7630004005500001234567840): "
        f"export one account per file")
    signon_only = data[:data.index("<BANKMSGSRSV1>")] + "</OFX>\n"
    assert refusal(path, signon_only.encode()) == (
        f"{path}: no bank statement (STMTRS or CCSTMTRS) in this OFX file; it holds SIGNONMSGSRSV1")
