"""Reading CFONB 120 statements: files in the published 120-column layout."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from helpers import ROOT
from stdnum import iso11649

from relances.daemon.bank import cfonb
from relances.daemon.errors import BankError

DATA = ROOT / "tests" / "bank" / "data"
ONE = DATA / "cfonb_one_account.txt"
TWO = DATA / "cfonb_two_accounts.txt"
ACCOUNT = "30004/00823/00012345678"
OTHER = "30004/00823/00098765432"


def amount(value: str, decimals: int = 2) -> str:
    """Columns 91-104: 13 digits and the overpunch character carrying the last digit and the sign."""
    units = int(Decimal(value).scaleb(decimals))
    digits = f"{abs(units):014d}"
    return digits[:13] + ("{ABCDEFGHI" if units >= 0 else "}JKLMNOPQR")[int(digits[13])]


def record(code: str, date: str, *, account: str = "00012345678", decimals: str = "2",
           value_date: str = "", label: str = "", entry: str = "", money: str = "0",
           reference: str = "", qualifier: str = "", detail: str = "") -> str:
    """One record, every field at its CFONB columns."""
    head = f"{code}30004    00823EUR{decimals} {account:11}  {date}"  # columns 1-40
    if code == "05":
        line = f"{head}{'':5}{qualifier:3}{detail:70}{'':2}"
    else:
        line = f"{head}  {value_date:6}{label:31}  {entry:7}  {amount(money, int(decimals))}{reference:16}"
    assert len(line) == 120
    return line


def write(path: Path, lines: list[str], end: str = "\r\n") -> Path:
    path.write_bytes((end.join(lines) + end).encode("ascii"))
    return path


def read(path: Path) -> cfonb.Statement:
    return cfonb.read(path, path.read_bytes())


def refusal(path: Path, lines: list[str] | bytes) -> str:
    data = lines if isinstance(lines, bytes) else ("\r\n".join(lines) + "\r\n").encode("ascii")
    path.write_bytes(data)
    with pytest.raises(BankError) as caught:
        cfonb.read(path, data)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_the_sample_files_are_in_the_layout() -> None:
    for path in (ONE, TWO):
        lines = path.read_bytes().splitlines()
        assert {len(line) for line in lines} == {120}
        assert {line[:2] for line in lines} == {b"01", b"04", b"05", b"07"}
    assert amount("1250.00") == "0000000012500{" and amount("-37.83") == "0000000000378L"
    assert iso11649.is_valid("RF96FA20240117")


def test_one_account_with_balances_movements_and_complements() -> None:
    statement = read(ONE)
    assert (statement.source, statement.format) == ("cfonb_one_account.txt", "cfonb120")
    assert statement.account_iban is None and statement.statement_id is None
    assert statement.date == dt.date(2024, 1, 15)  # the new balance's
    amounts = [entry.amount for entry in statement.entries]
    assert amounts == [Decimal("1250.00"), Decimal("480.00"), Decimal("-37.83"), Decimal("-12.50"),
                       Decimal("50.00"), Decimal("50.00")]
    dupont = statement.entries[0]
    assert (dupont.booked_on, dupont.value_date, dupont.currency) == (dt.date(2024, 1, 15),
                                                                       dt.date(2024, 1, 15), "EUR")
    assert dupont.identity == f"{ACCOUNT}:0012345:2024-01-15"
    assert (dupont.position, dupont.where) == (1, "cfonb_one_account.txt:2")
    assert dupont.bank_reference == "VR15012400012345"


def test_the_complements_are_joined_to_their_movement() -> None:
    dupont, martin, edf = read(ONE).entries[:3]
    assert dupont.counterparty == "DUPONT BATIMENT SAS"  # NPY
    # The label, then LIB, then RCN's first 35 columns (not its purpose code).
    assert dupont.text == "VIR SEPA RECU /FRM DUPONT BATIM FACTURE FA-2024-0117 DUP-2024-117"
    assert dupont.end_to_end_id == "DUP-2024-117"
    assert dupont.reference == "RF96FA20240117"  # LCS
    assert (martin.counterparty, martin.value_date) == ("MARTIN ET FILS", dt.date(2024, 1, 16))
    assert martin.text == "VIR SEPA RECU /FRM MARTIN ET FI REGLEMENT FACTURE FA-2024-0042"  # + LCC
    assert martin.reference is None and martin.end_to_end_id is None
    assert (edf.counterparty, edf.text) == ("EDF SA", "PRLV SEPA EDF")  # a debit's payee, NBE
    assert edf.where == "cfonb_one_account.txt:10"


def test_entries_without_a_number_get_distinct_hash_identities(tmp_path: Path) -> None:
    fee, one, two = read(ONE).entries[3:]
    assert fee.text == "FRAIS TENUE DE COMPTE" and fee.counterparty == ""
    assert all(entry.identity.startswith("h:") for entry in (fee, one, two))
    assert (one.amount, one.booked_on, one.text) == (two.amount, two.booked_on, two.text)
    assert one.identity != two.identity
    copy = tmp_path / "releve.txt"
    copy.write_bytes(ONE.read_bytes())
    assert [e.identity for e in read(copy).entries] == [e.identity for e in read(ONE).entries]


def test_two_accounts() -> None:
    statement = read(TWO)
    assert statement.date == dt.date(2024, 2, 1)
    garage, cheques, urssaf = statement.entries
    assert (garage.amount, garage.counterparty) == (Decimal("720.00"), "GARAGE MOREAU")
    assert (cheques.amount, cheques.text) == (Decimal("2000.00"), "REMISE CHEQUES REMISE 0001234 2 CHEQUES")
    assert urssaf.amount == Decimal("-1000.01")  # "J": the last digit 1, negative
    # The same entry number on two accounts: two identities.
    assert garage.identity == f"{ACCOUNT}:0020001:2024-02-01"
    assert cheques.identity == f"{OTHER}:0020001:2024-02-01"
    assert urssaf.identity == f"{OTHER}:0020002:2024-02-01"
    assert [e.where for e in statement.entries] == ["cfonb_two_accounts.txt:2", "cfonb_two_accounts.txt:6",
                                                    "cfonb_two_accounts.txt:8"]


def test_a_file_without_line_breaks(tmp_path: Path) -> None:
    flat = tmp_path / "flat.txt"
    flat.write_bytes(b"".join(ONE.read_bytes().splitlines()))
    assert len(flat.read_bytes()) == 15 * 120 and cfonb.looks_like(flat.read_bytes())
    entries, expected = read(flat).entries, read(ONE).entries
    assert [(e.identity, e.amount, e.text, e.counterparty) for e in entries] == [
        (e.identity, e.amount, e.text, e.counterparty) for e in expected]
    assert entries[2].where == "flat.txt: record 10"


def test_line_ends_lf_and_a_final_ctrl_z(tmp_path: Path) -> None:
    lines = ONE.read_text().splitlines()
    lf = write(tmp_path / "lf.txt", lines, "\n")
    lf.write_bytes(lf.read_bytes() + b"\x1a")
    assert [e.identity for e in read(lf).entries] == [e.identity for e in read(ONE).entries]


def test_the_number_of_decimals_is_applied(tmp_path: Path) -> None:
    path = write(tmp_path / "decimals.txt", [
        record("01", "010324", decimals="0", money="100"),
        record("04", "010324", decimals="0", value_date="010324", label="VIR", entry="1", money="-7"),
        record("04", "010324", decimals="3", value_date="010324", label="VIR", entry="2", money="1.234"),
        record("07", "010324", decimals="3", money="94.234")])
    assert [e.amount for e in read(path).entries] == [Decimal("-7"), Decimal("1.234")]


def test_looks_like(tmp_path: Path) -> None:
    assert cfonb.looks_like(ONE.read_bytes()) and cfonb.looks_like(TWO.read_bytes())
    assert not cfonb.looks_like(ONE.read_bytes()[122:])  # starts with a 04
    assert not cfonb.looks_like(b":20:STARTUMSE\r\n:25:30004/00012345678\r\n")
    assert not cfonb.looks_like(b'<?xml version="1.0"?><Document/>')
    assert not cfonb.looks_like(b"01" + b" " * 117 + b"\r\n")  # 119 characters
    assert not cfonb.looks_like(b"01" + b" " * 200)  # no line break, not a multiple of 120
    assert not cfonb.looks_like(b"")


def test_a_record_of_the_wrong_length(tmp_path: Path) -> None:
    lines = ONE.read_text().splitlines()
    lines[2] = lines[2].rstrip()
    path = tmp_path / "short.txt"
    assert refusal(path, lines) == (
        f"{path}: line 3, columns 1-67: 67 characters where a CFONB 120 record has 120")
    flat = b"".join(line.encode() for line in ONE.read_text().splitlines())[:-80]
    assert refusal(path, flat) == (
        f"{path}: record 15, columns 1-40: 40 characters where a CFONB 120 record has 120")


def test_an_unknown_record_code(tmp_path: Path) -> None:
    lines = ONE.read_text().splitlines()
    lines[6] = "03" + lines[6][2:]
    path = tmp_path / "code.txt"
    assert refusal(path, lines) == (
        f"{path}: line 7, columns 1-2: record code '03' is not a CFONB 120 one (01, 04, 05 or 07)")


def test_an_invalid_date(tmp_path: Path) -> None:
    path = tmp_path / "date.txt"
    lines = [record("01", "310124"), record("04", "300224", value_date="010324", entry="1", money="5"),
             record("07", "010324", money="5")]
    assert refusal(path, lines) == f"{path}: line 2, columns 35-40: '300224' is not a date (DDMMYY)"
    lines[1] = record("04", "010324", value_date="01 324", entry="1", money="5")
    assert refusal(path, lines) == f"{path}: line 2, columns 43-48: '01 324' is not a date (DDMMYY)"


def test_a_bad_overpunch_amount(tmp_path: Path) -> None:
    lines = ONE.read_text().splitlines()
    path = tmp_path / "amount.txt"
    lines[1] = lines[1][:103] + "X" + lines[1][104:]
    assert refusal(path, lines) == (
        f"{path}: line 2, columns 91-104: '0000000012500X' is not a CFONB amount (13 digits and a sign "
        f"character: {{ or A-I for +0..+9, }} or J-R for -0..-9)")
    lines = ONE.read_text().splitlines()
    lines[1] = lines[1][:95] + " " + lines[1][96:]
    assert refusal(path, lines).startswith(f"{path}: line 2, columns 91-104: '00000 0012500{{' is not")


def test_a_complement_without_its_movement(tmp_path: Path) -> None:
    path = tmp_path / "orphan.txt"
    npy = record("05", "150124", qualifier="NPY", detail="DUPONT")
    assert refusal(path, [record("01", "140124"), npy, record("07", "150124")]) == (
        f"{path}: line 2, columns 1-2: a complement (05) that does not follow a movement (04)")
    lines = [record("01", "140124"), record("04", "150124", entry="1", money="5"), record("07", "150124",
                                                                                         money="5"), npy]
    assert refusal(path, lines) == (
        f"{path}: line 4, columns 1-2: a complement (05) that does not follow a movement (04)")
    other = record("05", "150124", account="00098765432", qualifier="NPY", detail="DUPONT")
    assert refusal(path, [record("01", "140124"), record("04", "150124", entry="1", money="5"), other]) == (
        f"{path}: line 3, columns 3-32: the complement (05) is for account {OTHER}, its movement "
        f"(04, {path}: line 2) for {ACCOUNT}")


def test_a_file_that_does_not_add_up(tmp_path: Path) -> None:
    lines = TWO.read_text().splitlines()
    lines[-1] = record("07", "010224", account="00098765432", money="-200.00")
    path = tmp_path / "sum.txt"
    assert refusal(path, lines) == (
        f"{path}: line 9, columns 91-104: account {OTHER}: the new balance -200.00 is not the old "
        f"balance -1200.00 (line 5) plus the movements 999.99 (= -200.01): the file does not add up")


def test_other_refusals(tmp_path: Path) -> None:
    path = tmp_path / "other.txt"
    no_decimals = record("01", "010324")
    assert refusal(path, [no_decimals[:19] + "X" + no_decimals[20:]]) == (
        f"{path}: line 1, column 20: the number of decimals 'X' is not a digit")
    euros = record("01", "010324").replace("EUR", "E1R", 1)
    assert refusal(path, [euros]) == f"{path}: line 1, columns 17-19: currency 'E1R' is not three letters"
    lines = ONE.read_text().splitlines()
    assert refusal(path, lines[1:]) == (
        f"{path}: line 1, columns 1-2: the file starts with '04', not with an old balance (01): "
        f"not a CFONB 120 statement")
    assert refusal(path, b"") == f"{path}: empty: no CFONB 120 record"
