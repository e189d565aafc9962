"""Reading camt.053 statements: files in the published layouts of 001.02 and 001.08."""

from __future__ import annotations

import datetime as dt
import random
import re
import string
import time
from decimal import Decimal
from pathlib import Path

import pytest
import schwifty
from helpers import ROOT
from stdnum import iban as stdnum_iban
from stdnum import iso11649
from stdnum.exceptions import ValidationError

from relances.daemon.bank import camt, camt_quick
from relances.daemon.errors import BankError

DATA = ROOT / "tests" / "bank" / "data"
V08 = DATA / "camt_053_001_08.xml"
V02 = DATA / "camt_053_001_02.xml"
ACCOUNT_08 = "FR7630006000011234567890189"
ACCOUNT_02 = "FR7630001007941234567890185"


def read(path: Path) -> camt.Statement:
    return camt.read(path, path.read_bytes())


def refusal(path: Path, text: str | bytes) -> str:
    data = text.encode() if isinstance(text, str) else text
    path.write_bytes(data)
    with pytest.raises(BankError) as caught:
        camt.read(path, data)
    message = str(caught.value)
    assert "\n" not in message
    return message


def line_of(text: str, needle: str, after: str = "") -> int:
    """The 1-based line of ``needle``'s first occurrence after ``after``."""
    start = text.index(after) if after else 0
    return text[: text.index(needle, start)].count("\n") + 1


def test_the_ibans_and_references_of_the_samples_are_valid() -> None:
    for iban in (ACCOUNT_08, ACCOUNT_02, "FR1420041010050500013M02606", "DE89370400440532013000",
                 "FR7630004000031234567890143", "BE68539007547034", "ES9121000418450200051332",
                 "FR7610107001011234567890129"):
        assert schwifty.IBAN(iban).compact == iban
    assert iso11649.is_valid("RF96FA20240117")
    assert iso11649.is_valid("RF18539007547034")


def test_001_08_statement_and_a_credit_with_an_rf_reference() -> None:
    statement = read(V08)
    assert (statement.source, statement.format) == ("camt_053_001_08.xml", "camt.053.001.08")
    assert statement.account_iban == ACCOUNT_08
    assert statement.statement_id == "STMT-2024-01-15"
    assert statement.date == dt.date(2024, 1, 15)  # the closing balance's, not CreDtTm's 16th
    assert len(statement.entries) == 7  # 6 Ntry, one of them a batch of 2
    first = statement.entries[0]
    assert first.amount == Decimal("1250.00") and first.is_credit and first.currency == "EUR"
    assert (first.booked_on, first.value_date) == (dt.date(2024, 1, 15), dt.date(2024, 1, 15))
    assert first.counterparty == "DUPONT BATIMENT SAS"  # Dbtr/Pty/Nm, the 001.08 path
    assert first.counterparty_iban == "FR1420041010050500013M02606"
    assert first.reference == "RF96FA20240117"
    assert first.end_to_end_id == "DUP-2024-117"
    assert first.bank_reference == "240115CRE0001"
    assert first.identity == f"{ACCOUNT_08}:240115CRE0001"
    assert (first.position, first.where) == (1, "camt_053_001_08.xml: entry 1")


def test_an_invoice_number_only_in_the_free_text() -> None:
    entry = read(V08).entries[1]
    assert entry.text == "FACTURE FA-2024-0042 DU 05/12/2023"
    assert entry.reference is None
    assert entry.end_to_end_id is None  # NOTPROVIDED is no id
    assert (entry.counterparty, entry.counterparty_iban) == ("MARTIN ET FILS", "DE89370400440532013000")
    assert entry.amount == Decimal("480.00") and entry.value_date == dt.date(2024, 1, 16)


def test_a_batch_entry_gives_one_entry_per_transaction() -> None:
    roux, cafe = read(V08).entries[2:4]
    assert (roux.amount, cafe.amount) == (Decimal("100.00"), Decimal("200.00"))
    assert (roux.counterparty, cafe.counterparty) == ("BOULANGERIE ROUX", "CAFE DES ARTS")
    assert (roux.text, cafe.text) == ("FA-2024-0050", "FA-2024-0051")
    assert cafe.counterparty_iban == "BE68539007547034"
    assert roux.identity == f"{ACCOUNT_08}:240115CRE0003/1"
    assert cafe.identity == f"{ACCOUNT_08}:240115CRE0003/2"
    assert (roux.where, cafe.where) == ("camt_053_001_08.xml: entry 3, transaction 1",
                                        "camt_053_001_08.xml: entry 3, transaction 2")
    assert (roux.position, cafe.position) == (3, 4)


def test_a_fee_is_a_debit() -> None:
    fee = read(V08).entries[4]
    assert fee.amount == Decimal("-12.50") and not fee.is_credit
    assert fee.text == "FRAIS TENUE DE COMPTE JANVIER"  # AddtlNtryInf, no NtryDtls
    assert fee.identity == f"{ACCOUNT_08}:240115FRA0001"
    assert fee.counterparty == "" and fee.counterparty_iban is None


def test_two_equal_transfers_without_references_stay_two() -> None:
    one, two = read(V08).entries[5:7]
    assert (one.amount, one.booked_on, one.text) == (two.amount, two.booked_on, two.text)
    assert one.identity.startswith("h:") and two.identity.startswith("h:")
    assert one.identity != two.identity


def test_identities_are_stable_across_reads(tmp_path: Path) -> None:
    again = tmp_path / "releve-du-15.xml"
    again.write_bytes(V08.read_bytes())
    identities = [entry.identity for entry in read(V08).entries]
    assert identities == [entry.identity for entry in read(again).entries]
    assert len(set(identities)) == len(identities)


def test_001_02_statement() -> None:
    statement = read(V02)
    assert statement.format == "camt.053.001.02" and statement.account_iban == ACCOUNT_02
    assert statement.statement_id == "RLV-20240131"
    assert statement.date == dt.date(2024, 2, 1)  # no closing balance: CreDtTm
    garage, lot1, lot2, supplier = statement.entries  # the pending (PDNG) entry is left out
    assert garage.booked_on == dt.date(2024, 1, 31)  # BookgDt/DtTm
    assert garage.counterparty == "GARAGE MOREAU"  # Dbtr/Nm, the 001.02 path
    assert garage.counterparty_iban == "ES9121000418450200051332"
    assert garage.text == "FACT F2024-0031 ACOMPTE 50 POURCENT"  # two Ustrd joined
    assert garage.reference == "RF18539007547034"
    assert garage.identity == f"{ACCOUNT_02}:FR20240131-778"
    # A batch read from AmtDtls/TxAmt/Amt; no AcctSvcrRef: the end-to-end ids, the day and the amount.
    assert (lot1.amount, lot2.amount) == (Decimal("400.00"), Decimal("550.00"))
    assert (lot1.counterparty, lot2.counterparty) == ("PHARMACIE CENTRALE", "PHARMACIE DU PORT")
    assert lot1.identity == f"{ACCOUNT_02}:e2e:LOT-A-1:2024-01-31:400.00"
    assert lot2.identity == f"{ACCOUNT_02}:e2e:LOT-A-2:2024-01-31:550.00"
    # A debit: the other party is the creditor.
    assert supplier.amount == Decimal("-1500.00")
    assert (supplier.counterparty, supplier.counterparty_iban) == ("FOURNITURES PRO SA",
                                                                   "FR7610107001011234567890129")
    assert supplier.text == "FACTURE FOURNISSEUR 8812"


def test_other_versions_with_the_same_paths_are_read(tmp_path: Path) -> None:
    path = tmp_path / "v04.xml"
    path.write_text(V02.read_text().replace("camt.053.001.02", "camt.053.001.04"))
    statement = read(path)
    assert statement.format == "camt.053.001.04" and len(statement.entries) == 4


def test_several_statements_in_one_file(tmp_path: Path) -> None:
    text = V08.read_text()
    stmt = text[text.index("<Stmt>"):text.index("</Stmt>") + len("</Stmt>")]
    second = stmt.replace("STMT-2024-01-15", "STMT-2024-01-16").replace("2024-01-15", "2024-01-16")
    path = tmp_path / "two.xml"
    path.write_text(text.replace(stmt, stmt + second))
    statement = read(path)
    assert statement.statement_id == "STMT-2024-01-15,STMT-2024-01-16"
    assert statement.date == dt.date(2024, 1, 16) and len(statement.entries) == 14
    assert [e.position for e in statement.entries] == list(range(1, 15))
    assert statement.entries[7].where == "two.xml: entry 7"
    # The same bank references in both: the second gets "#2".
    assert statement.entries[7].identity == f"{ACCOUNT_08}:240115CRE0001#2"
    assert len({e.identity for e in statement.entries}) == 14


def test_looks_like() -> None:
    assert camt.looks_like(V08.read_bytes()) and camt.looks_like(V02.read_bytes())
    prefixed = (b'\xef\xbb\xbf<?xml version="1.0"?>\n<!-- export -->\n<c:Document '
                b'xmlns:c="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><c:BkToCstmrStmt/>')
    assert camt.looks_like(prefixed)
    assert camt.looks_like(V02.read_text().encode("utf-16"))
    assert not camt.looks_like(V08.read_bytes().replace(b"camt.053.001.08", b"camt.054.001.08"))
    assert not camt.looks_like(b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"/>')
    assert not camt.looks_like(b"OFXHEADER:100\r\nDATA:OFXSGML\r\n")
    assert not camt.looks_like(b"0130004    00823EUR2 00012345678  140124" + b" " * 80)
    assert not camt.looks_like(b"")


def test_an_invalid_debtor_iban_is_left_out(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "bad-debtor.xml"
    path.write_text(V08.read_text().replace("FR1420041010050500013M02606", "FR1420041010050500013M02607"))
    entry = read(path).entries[0]
    assert entry.counterparty_iban is None and entry.counterparty == "DUPONT BATIMENT SAS"
    assert "Dbtr's IBAN 'FR1420041010050500013M02607' is not valid: left out" in caplog.text


def test_sniffing_a_hostile_head_is_quick() -> None:
    started = time.monotonic()
    for head in (b"<!DOCTYPE " + b"[]" * 4000, b"<Document" + b" " * 8000, b"<!--" + b"-" * 8000,
                 b"<Document" + b' xmlns="' * 1000, b" <?x?>" * 1500):
        assert not camt.looks_like(head)
    assert time.monotonic() - started < 1


def test_not_xml_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "releve.xml"
    assert refusal(path, b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj") == (
        f"{path}: line 1, column 1: not XML (Start tag expected, '<' not found; the file starts with "
        f"'%PDF-1.7.%..'): not a camt.053 statement")


def test_broken_xml_names_the_line(tmp_path: Path) -> None:
    text = V08.read_text().replace("</Ntry>", "</Nrty>", 2)
    path = tmp_path / "broken.xml"
    message = refusal(path, text)
    assert message.startswith(f"{path}: line {line_of(text, '</Nrty>')}, column ")
    assert "not well-formed XML (Opening and ending tag mismatch: Ntry line" in message


def test_xml_that_is_not_a_camt_053(tmp_path: Path) -> None:
    path = tmp_path / "order.xml"
    assert refusal(path, '<?xml version="1.0"?>\n<Document xmlns="urn:iso:std:iso:20022:tech:xsd:'
                         'pain.001.001.03"><CstmrCdtTrfInitn/></Document>') == (
        f"{path}: line 2: the XML is pain.001.001.03, a credit transfer order, not a camt.053 statement "
        f"(a Document in urn:iso:std:iso:20022:tech:xsd:camt.053.001.xx)")
    assert refusal(path, V08.read_text().replace("camt.053.001.08", "camt.054.001.08")) == (
        f"{path}: line 2: the XML is camt.054.001.08, a debit/credit notification, not a camt.053 "
        f"statement (a Document in urn:iso:std:iso:20022:tech:xsd:camt.053.001.xx)")
    assert refusal(path, "<rss><channel/></rss>") == (
        f"{path}: line 1: the XML's root is <rss> without a namespace, not a camt.053 statement "
        f"(a Document in urn:iso:std:iso:20022:tech:xsd:camt.053.001.xx)")


def test_a_missing_amount_names_the_entry(tmp_path: Path) -> None:
    text = V08.read_text()
    text = text.replace('<Amt Ccy="EUR">480.00</Amt>\n        <CdtDbtInd>', "<CdtDbtInd>", 1)
    path = tmp_path / "no-amount.xml"
    line = line_of(text, "<Ntry>", after="<NtryRef>1</NtryRef>")
    assert refusal(path, text) == (
        f"{path}: line {line}: BkToCstmrStmt/Stmt[1]/Ntry[2]/Amt: the amount is missing")


def test_bad_values_are_refused_where_they_are(tmp_path: Path) -> None:
    path = tmp_path / "bad.xml"
    text = V08.read_text()
    bad_amount = text.replace(">12.50<", ">12,50<")
    assert refusal(path, bad_amount) == (
        f"{path}: line {line_of(bad_amount, '12,50')}: BkToCstmrStmt/Stmt[1]/Ntry[4]/Amt: '12,50' is not "
        f"an amount (digits, a point, up to 5 decimals)")
    bad_sign = text.replace("<CdtDbtInd>DBIT</CdtDbtInd>", "<CdtDbtInd>DEBIT</CdtDbtInd>")
    assert refusal(path, bad_sign).endswith(
        "BkToCstmrStmt/Stmt[1]/Ntry[4]/CdtDbtInd: 'DEBIT' is neither CRDT nor DBIT")
    bad_date = text.replace("<BookgDt><Dt>2024-01-15</Dt>", "<BookgDt><Dt>2024-02-30</Dt>", 1)
    assert refusal(path, bad_date).endswith(
        "BkToCstmrStmt/Stmt[1]/Ntry[1]/BookgDt/Dt: '2024-02-30' is not a date (YYYY-MM-DD)")
    bad_iban = text.replace(f"<IBAN>{ACCOUNT_08}</IBAN></Id>\n        <Ccy>",
                            "<IBAN>FR7630006000011234567890180</IBAN></Id>\n        <Ccy>")
    assert refusal(path, bad_iban) == (
        f"{path}: line {line_of(bad_iban, 'FR7630006000011234567890180')}: BkToCstmrStmt/Stmt[1]/Acct/Id/"
        f"IBAN: 'FR7630006000011234567890180' is not a valid IBAN")
    batch = text.replace('<Amt Ccy="EUR">200.00</Amt>', "")
    assert refusal(path, batch).endswith(
        "BkToCstmrStmt/Stmt[1]/Ntry[3]/NtryDtls/TxDtls[2]/Amt: transaction 2 of a batch entry has no amount")
    old = text.replace("camt.053.001.08", "camt.053.001.01")
    assert refusal(path, old) == (
        f"{path}: line 2: camt.053.001.01 is not read (only camt.053.001.02 and later)")


DTD_REFUSED = ("the XML declares a DTD (<!DOCTYPE>), which no camt.053 needs: "
               "refused, its entities are not read")


def test_external_entities_are_refused_unread(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-PASSWORD")
    head = (f'<?xml version="1.0"?>\n<!DOCTYPE Document [<!ENTITY s SYSTEM "{secret.as_uri()}">'
            f'<!ENTITY web SYSTEM "http://127.0.0.1:9/x">]>\n')
    text = V08.read_text().replace('<?xml version="1.0" encoding="UTF-8"?>\n', head)
    text = text.replace("<Nm>DUPONT BATIMENT SAS</Nm>", "<Nm>&s;&web;</Nm>")
    path = tmp_path / "xxe.xml"
    message = refusal(path, text)
    assert message == f"{path}: {DTD_REFUSED}"
    assert "TOP-SECRET" not in message


def test_a_billion_laughs_is_not_expanded(tmp_path: Path) -> None:
    entities = ['<!ENTITY lol "lol">'] + [
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10)]
    text = V08.read_text().replace(
        '<?xml version="1.0" encoding="UTF-8"?>\n', f"<!DOCTYPE Document [{''.join(entities)}]>\n")
    text = text.replace("<Ustrd>COTISATION 2024</Ustrd>", "<Ustrd>&lol9;</Ustrd>")
    path = tmp_path / "lol.xml"
    started = time.monotonic()
    assert refusal(path, text) == f"{path}: {DTD_REFUSED}"
    assert time.monotonic() - started < 1


def test_a_doctype_beyond_the_first_kilobytes_is_refused_too(tmp_path: Path) -> None:
    padding = "<!--" + "x" * 20_000 + "-->\n"
    text = V08.read_text().replace(
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        f'<?xml version="1.0"?>\n{padding}<!DOCTYPE Document [<!ENTITY e "injected">]>\n')
    text = text.replace("<Nm>DUPONT BATIMENT SAS</Nm>", "<Nm>&e;</Nm>")
    path = tmp_path / "late-doctype.xml"
    assert refusal(path, text) == f"{path}: {DTD_REFUSED}"


def _careful_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(camt, "quick_entry", lambda *args, **kwargs: None)


@pytest.mark.parametrize("name", ["camt_053_001_02.xml", "camt_053_001_08.xml"])
def test_the_quick_path_reads_what_the_careful_reader_reads(name: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    quick = read(DATA / name)
    _careful_only(monkeypatch)
    careful = read(DATA / name)
    assert quick == careful and len(quick.entries) > 3


def test_the_bench_statement_reads_the_same_both_ways(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The benchmark's statement: RF references, invoice numbers, IBANs, debits, unknown payers."""
    import importlib.util

    monkeypatch.syspath_prepend(ROOT / "bench")  # as `python bench/bank.py` has it
    spec = importlib.util.spec_from_file_location("bench_bank", ROOT / "bench" / "bank.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    invoices = [(i, f"COD_F{i:07d}", 1 + i % 50, 1000 + 37 * i) for i in range(1, 2001)]
    bench.write_statement(tmp_path / "releve.xml", invoices, 600, 50)
    taken = []
    real = camt.quick_entry

    def counted(*args: object, **kwargs: object) -> object:
        done = real(*args, **kwargs)  # type: ignore[arg-type]
        taken.append(done is not None)
        return done

    monkeypatch.setattr(camt, "quick_entry", counted)
    quick = read(tmp_path / "releve.xml")
    assert len(taken) == 600 and all(taken)  # every entry of it is plain
    _careful_only(monkeypatch)
    assert read(tmp_path / "releve.xml") == quick


@pytest.mark.parametrize("separator", ["\ue000", "\ue001", "\ue002"])
def test_a_value_holding_a_separator_is_read_whole(separator: str, tmp_path: Path) -> None:
    """A separator of the quick path inside a remittance text sends that entry, or the whole
    file, to the careful reader: the text is kept as it is, and no entry is lost or shifted."""
    text = (DATA / "camt_053_001_08.xml").read_text(encoding="utf-8")
    first = re.search(r"<Ustrd>([^<]*)</Ustrd>", text)
    assert first is not None
    path, same = tmp_path / "releve.xml", tmp_path / "plain" / "releve.xml"
    path.write_text(text.replace(first.group(0), f"<Ustrd>AVANT{separator}APRES</Ustrd>", 1),
                    encoding="utf-8")
    same.parent.mkdir()
    same.write_text(text, encoding="utf-8")
    plain = read(same)
    odd = read(path)
    assert len(odd.entries) == len(plain.entries)
    changed = [(a, b) for a, b in zip(plain.entries, odd.entries, strict=True) if a != b]
    assert len(changed) == 1 and f"AVANT{separator}APRES" in changed[0][1].text
    assert [e.amount for e in odd.entries] == [e.amount for e in plain.entries]


def test_the_quick_iban_check_agrees_with_python_stdnum() -> None:
    """camt_quick's IBAN check is stdnum's (country layout, mod 97-10) looked up once per
    country; the one difference: check digits must be digits, as ISO 13616 asks."""
    rng = random.Random(5)
    given = [str(schwifty.IBAN.generate("FR", bank_code="30006", account_code=f"{i:011d}"))
             for i in range(100)]
    given += ["DE89370400440532013000", "GB82WEST12345698765432", "BE68539007547034",
              "ES9121000418450200051332", "NO9386011117947", "FR1420041010050500013M02606"]
    cases = list(given)
    for iban in given:
        for _ in range(6):
            chars = list(iban)
            chars[rng.randrange(len(chars))] = rng.choice(string.ascii_uppercase + string.digits)
            cases.append("".join(chars))
    cases += ["fr14 2004 1010 0505 0001 3m02 606", "FR14-2004-1010-0505-0001-3M02-606", "XX00",
              "ZZ89370400440532013000", "FR142004101005050001", ""]
    for case in cases:
        try:
            expected = stdnum_iban.validate(case, check_country=False)
        except ValidationError:
            expected = None
        if expected is not None and not expected[2:4].isdigit():
            expected = None
        assert camt_quick._iban(case) == expected, case
