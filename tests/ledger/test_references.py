"""Payment references (ISO 11649) and the EPC QR payload."""

from __future__ import annotations

import datetime as dt
import random
import string
from decimal import Decimal

import pytest
from stdnum import iso11649
from stdnum.exceptions import ValidationError
from stdnum.iso7064 import mod_97_10

from relances.daemon.ledger.references import (
    checked_reference,
    decode_reference,
    epc_qr_payload,
    find_references,
    format_reference,
    invoice_reference,
    statement_reference,
)


def rf(body: str) -> str:
    """An RF reference for any body, computed independently of the module."""
    return f"RF{mod_97_10.calc_check_digits(body + 'RF')}{body}"


def bad_check_digits(reference: str) -> str:
    wrong = (int(reference[2:4]) + 1) % 100
    return f"RF{wrong:02d}{reference[4:]}"


def mutations(text: str, count: int, seed: int) -> list[str]:
    """``text`` with one character changed, ``count`` times (letters, digits, a space, a dash)."""
    rng = random.Random(seed)
    alphabet = string.ascii_uppercase + string.digits + " -"
    done = []
    for _ in range(count):
        chars = list(text)
        chars[rng.randrange(len(chars))] = rng.choice(alphabet)
        done.append("".join(chars))
    return done


def test_the_quick_check_agrees_with_python_stdnum() -> None:
    """checked_reference is iso11649.validate made quick; the one difference: check digits
    must be digits (stdnum reads "RF2B…" with B as 11, ISO 11649 asks for two digits)."""
    given = [invoice_reference(f"F{i}", i) for i in range(200)]
    given += [invoice_reference(f"COD_F{i}", i) for i in range(50)]
    given += [statement_reference(i, dt.date(2026, 11, i % 28 + 1)) for i in range(50)]
    cases = given + [m for i, r in enumerate(given) for m in mutations(r, 4, i)]
    cases += ["rf18 5390 0754 7034", "RF18539007547034 ", "RF00", "RF", "", "RF18\u0131", "R F18"]
    for case in cases:
        try:
            expected = iso11649.validate(case)
        except ValidationError:
            expected = None
        if expected is not None and not expected[2:4].isdigit():
            expected = None
        assert checked_reference(case) == expected, case


# --- invoice references -------------------------------------------------------------------


def test_the_standard_example() -> None:
    # ISO 11649's own example: RF18 5390 0754 7034.
    assert invoice_reference("539007547034", 1) == "RF18539007547034"
    assert format_reference("RF18539007547034") == "RF18 5390 0754 7034"


@pytest.mark.parametrize("number, body", [
    ("F2024001", "F2024001"),
    ("f2024001", "F2024001"),            # upper-cased: RF is case-insensitive
    ("2024001", "2024001"),
    ("A", "A"),
    ("X", "X"),                          # X without digits is no id
    ("XA12", "XA12"),
    ("S12D2411", "S12D2411"),            # four digits after D: not a statement
    ("S12D24112233", "S12D24112233"),
    ("A" * 21, "A" * 21),                # the longest body
])
def test_clean_numbers_make_the_reference(number: str, body: str) -> None:
    reference = invoice_reference(number, 7)
    assert reference == rf(body)
    assert iso11649.validate(reference) == reference
    assert decode_reference(reference) == ("number", body)


@pytest.mark.parametrize("number", [
    "COD_F1026", "2024/001", "F 2024 001", " F1", "F1 ", "FA-2024-003", "F2024.001",
    "A" * 22, "F" + "9" * 40,           # too long
    "", "Fé1", "Fß1",                   # "ß".upper() is "SS": still not [A-Za-z0-9]
    # Numbers that would read as the id or the statement form:
    "X12", "x12", "X0", "X007", "S12D241122", "s12d241122", "S1D991399", "S01D241122",
])
def test_other_numbers_use_the_id(number: str) -> None:
    reference = invoice_reference(number, 7)
    assert reference == rf("X7")
    assert iso11649.validate(reference) == reference
    assert decode_reference(reference) == ("id", 7)


def test_references_are_unique_per_invoice() -> None:
    numbers = ["F1", "F2", "COD_F1", "COD_F2", "X1", "X2", "S1D241122", "1", "2", "X", "S"]
    references = [invoice_reference(number, i) for i, number in enumerate(numbers, start=1)]
    assert len(set(references)) == len(references)
    # A number that looks like an id is given its own id, not the one it looks like.
    assert invoice_reference("X2", 5) != invoice_reference("COD", 2)
    assert invoice_reference("X2", 5) == rf("X5")


def test_two_numbers_differing_by_case_share_a_reference() -> None:
    # Documented: the matcher looks the number up case-insensitively.
    assert invoice_reference("f1", 1) == invoice_reference("F1", 2)


def test_ids_and_their_limits() -> None:
    assert invoice_reference("COD_1", 0) == rf("X0")
    big = 10 ** 20 - 1
    assert decode_reference(invoice_reference("COD_1", big)) == ("id", big)
    for wrong in (-1, 10 ** 20):
        with pytest.raises(ValueError):
            invoice_reference("COD_1", wrong)
    with pytest.raises(ValueError):
        invoice_reference("COD_1", None)  # type: ignore[arg-type]


# --- statements -----------------------------------------------------------------------


def test_statement_reference() -> None:
    reference = statement_reference(12, dt.date(2024, 11, 22))
    assert reference == rf("S12D241122")
    assert iso11649.is_valid(reference)
    assert decode_reference(reference) == ("statement", (12, dt.date(2024, 11, 22)))
    longest = statement_reference(10 ** 13 - 1, dt.date(2031, 1, 5))
    assert len(longest) == 25
    assert decode_reference(longest) == ("statement", (10 ** 13 - 1, dt.date(2031, 1, 5)))
    with pytest.raises(ValueError):
        statement_reference(10 ** 13, dt.date(2024, 1, 1))
    with pytest.raises(ValueError):
        statement_reference(-3, dt.date(2024, 1, 1))


# --- decoding ------------------------------------------------------------------------------


@pytest.mark.parametrize("reference", [
    invoice_reference("F2024001", 3), invoice_reference("COD_F1026", 1026),
    statement_reference(1, dt.date(2025, 2, 28)), statement_reference(77, dt.date(2024, 2, 29)),
])
def test_decode_round_trips_in_every_spelling(reference: str) -> None:
    decoded = decode_reference(reference)
    assert decoded is not None
    for spelling in (format_reference(reference), format_reference(reference).lower(),
                     f"  {reference.lower()} "):
        assert decode_reference(spelling) == decoded


def test_decode_accepts_spaces_and_lower_case() -> None:
    assert decode_reference("rf18 5390 0754 7034") == ("number", "539007547034")


@pytest.mark.parametrize("reference", [
    bad_check_digits(invoice_reference("F2024001", 1)),
    bad_check_digits(statement_reference(12, dt.date(2024, 11, 22))),
    "RF17 5390 0754 7034",
    rf("X07"),                 # an id with a leading zero is never made
    rf("S012D241122"),
    rf("S12D241322"),          # no 13th month
    rf("S12D230229"),          # 2023 has no 29 February
    "", "RF", "RF18", "hello", "F2024001", "RF18 5390_0754", rf("A" * 21) + "A",
])
def test_decode_refuses(reference: str) -> None:
    assert decode_reference(reference) is None


# --- in bank texts -----------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("VIR SEPA RECU /DE SOCIETE X /MOTIF RF18 5390 0754 7034 FACT 12", ["RF18539007547034"]),
    ("VIR SEPA RECU /DE SOCIETE X /MOTIF RF18539007547034 FACT 12", ["RF18539007547034"]),
    ("VIREMENT DE M DUPONT REF:RF18539007547034/FACT", ["RF18539007547034"]),
    ("vir recu rf18 5390 0754 7034", ["RF18539007547034"]),
    ("PRLV /RF18 5390 0754 7034/ /RF18539007547034", ["RF18539007547034"]),  # once
    ("/EREF/NOTPROVIDED/RMTINF/RF44S12D241122", ["RF44S12D241122"]),
    ("RF44 S12D 2411 22 ET RF18 5390 0754 7034", ["RF44S12D241122", "RF18539007547034"]),
    ("RF1853900754 7034", []),        # a space inside is a space of the print form only
    ("VIR SEPA RECU /MOTIF RF17 5390 0754 7034 FACT 12", []),
    ("VIR SEPA RECU /MOTIF RF17539007547034", []),
    ("XRF18539007547034 ARF18 5390 0754 7034", []),  # RF must open a word
    ("FACTURE F2024001 REGLEMENT", []),
    ("", []),
])
def test_find_references(text: str, expected: list[str]) -> None:
    assert find_references(text) == expected


def test_find_our_own_references_as_printed() -> None:
    invoice = invoice_reference("F2024001", 1)
    by_id = invoice_reference("COD_F1026", 1026)
    statement = statement_reference(12, dt.date(2024, 11, 22))
    text = (f"VIR SEPA RECU /DE INTEL SA /MOTIF {format_reference(invoice)} FACT F2024001 "
            f"+ {format_reference(by_id)}\n{format_reference(statement).lower()} SOLDE")
    assert find_references(text) == [invoice, by_id, statement]
    assert [decode_reference(r) for r in find_references(text)] == [
        ("number", "F2024001"), ("id", 1026), ("statement", (12, dt.date(2024, 11, 22)))]
    wrong = bad_check_digits(invoice)
    assert find_references(f"MOTIF {format_reference(wrong)} FACT F2024001") == []


# --- the EPC QR payload --------------------------------------------------------------------


def test_epc_payload_line_by_line() -> None:
    payload = epc_qr_payload(bic="AGRIFRPPXXX", name="Codial Démo SARL",
                             iban="FR76 3000 6000 0112 3456 7890 189",
                             amount=Decimal("1253.06"), reference="RF18 5390 0754 7034")
    assert payload.split("\n") == [
        "BCD",                           # service tag
        "002",                           # version
        "1",                             # UTF-8
        "SCT",                           # SEPA credit transfer
        "AGRIFRPPXXX",                   # BIC
        "Codial Démo SARL",              # beneficiary
        "FR7630006000011234567890189",   # IBAN, no spaces
        "EUR1253.06",                    # amount
        "",                              # purpose
        "RF18539007547034",              # structured remittance
        "",                              # unstructured remittance
    ]
    assert payload.encode("utf-8").decode("utf-8") == payload


@pytest.mark.parametrize("amount, line", [
    (Decimal("680.4"), "EUR680.40"), (Decimal("1"), "EUR1.00"), (Decimal("0.01"), "EUR0.01"),
    (Decimal("999999999.99"), "EUR999999999.99"), (Decimal("12.345"), "EUR12.35"),
])
def test_epc_amounts(amount: Decimal, line: str) -> None:
    payload = epc_qr_payload(bic="", name="X", iban="FR7630006000011234567890189",
                             amount=amount, reference="RF18539007547034")
    assert payload.split("\n")[7] == line
    assert payload.split("\n")[4] == ""  # a BIC is optional in version 002


@pytest.mark.parametrize("amount", [
    Decimal("0"), Decimal("-5"), Decimal("0.004"), Decimal("1000000000.00"),
    Decimal("999999999.995"), Decimal("NaN"), Decimal("Infinity"),
])
def test_epc_refuses_amounts(amount: Decimal) -> None:
    with pytest.raises(ValueError):
        epc_qr_payload(bic="AGRIFRPPXXX", name="X", iban="FR7630006000011234567890189",
                       amount=amount, reference="RF18539007547034")


def test_epc_cuts_the_name_and_refuses_the_rest() -> None:
    long_name = "Société " + "A" * 80
    payload = epc_qr_payload(bic="AGRIFRPPXXX", name=long_name,
                             iban="FR7630006000011234567890189", amount=Decimal("1"),
                             reference="RF18539007547034")
    assert payload.split("\n")[5] == long_name[:70]
    for kwargs in ({"name": ""}, {"iban": " "}, {"reference": "RF17539007547034"},
                   {"reference": "F2024001"}):
        arguments = {"bic": "AGRIFRPPXXX", "name": "X", "iban": "FR7630006000011234567890189",
                     "amount": Decimal("1"), "reference": "RF18539007547034", **kwargs}
        with pytest.raises(ValueError):
            epc_qr_payload(**arguments)  # type: ignore[arg-type]
