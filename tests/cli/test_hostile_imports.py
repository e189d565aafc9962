"""Hostile import files: each refused whole with one line naming the file, the line and
the column, exit status 1, nothing written; on SQLite and PostgreSQL.

Each bad row comes after 300 good ones, so that the fast reader of exports
reads them first and must hand the bad one to the careful rules.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from helpers import ROOT, Cli, write_settings

HEADER = ("Code\tAffilié\tNom\temail\tDate Fac.\tN° Fac.\tAffect.\tRepr.\tTotal Fac.\t"
          "Reste\tEchéance\tEch.\tRglmt.\tN-1\tRelancé le\tInfo Réin\tN")
GOOD = 300
TAB_FEC = ROOT / "tests" / "ledger" / "fec" / "812345678FEC20241231.txt"


def line(n: int, *, name: str | None = None, total: str = "10,00", remaining: str | None = None,
         due: str = "31/01/2024", code: str | None = None, extra: str = "") -> str:
    cells = [code or f"C{n}", "", name or f"CLIENT {n}", "", "01/01/2024", f"F-{n}", "", "",
             total, remaining or total, due, "", "", "", "", "", ""]
    return "\t".join(cells) + (f"\t{extra}" if extra else "")


def export(tmp_path: Path, bad: str | bytes, *, encoding: str = "utf-8") -> Path:
    """An export of GOOD good rows, then ``bad`` on line GOOD + 2 (``encoding="ascii"``:
    the header without its accents)."""
    path = tmp_path / "invoices.tsv"
    header = HEADER.replace("é", "e").replace("°", "") if encoding == "ascii" else HEADER
    head = "\n".join([header, *(line(n) for n in range(1, GOOD + 1))]) + "\n"
    tail = bad if isinstance(bad, bytes) else (bad + "\n").encode(encoding)
    path.write_bytes(head.encode(encoding) + tail)
    return path


def refused(cli: Cli, path: Path, kind: str = "invoices") -> str:
    """The one line of a refused import, once nothing is shown written."""
    result = cli(["import", kind, str(path)], ok=False)
    assert result.exit_code == 1, result.output
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("relances: error: ")
    assert json.loads(cli(["list", "--format", "json", "--as-of", "2024-06-01"]).stdout) == []
    return result.stderr.removeprefix("relances: error: ").rstrip("\n")


BAD_AMOUNTS = {
    "1e30": "an amount in scientific notation: '1e30' (format the column as a number with two "
            "decimals)",
    "1,23457E+11": "an amount in scientific notation: '1,23457E+11' (format the column as a "
                   "number with two decimals)",
    "99999999999999999": "an amount above 999999999999.99: '99999999999999999'",
    "1_000": "not an amount: '1_000'",
    "١٢": "not an amount: '١٢'",
    "NaN": "not an amount: 'NaN'",
}


@pytest.mark.parametrize(("amount", "message"), BAD_AMOUNTS.items())
def test_an_amount_python_reads_but_an_export_never_holds(cli: Cli, tmp_path: Path, amount: str,
                                                          message: str) -> None:
    path = export(tmp_path, line(999, total=amount))
    assert refused(cli, path) == f"{path}:{GOOD + 2}: column 'Total Fac.': {message}"


def test_a_negative_total_and_a_remaining_above_it(cli: Cli, tmp_path: Path) -> None:
    path = export(tmp_path, line(999, total="-5,00", remaining="0,00"))
    assert refused(cli, path) == (f"{path}:{GOOD + 2}: column 'Total Fac.': a negative total "
                                  "-5.00 (a credit note is not reminded: leave it out of the "
                                  "export)")
    path = export(tmp_path, line(999, total="5,00", remaining="10,00"))
    assert refused(cli, path) == (f"{path}:{GOOD + 2}: column 'Reste': 10.00 remaining is more "
                                  "than the invoice's total 5.00")


@pytest.mark.parametrize("due", ["24/12/0001", "31/12/1899", "01/01/2101", "0001-12-24"])
def test_a_date_before_1900_or_after_2100(cli: Cli, tmp_path: Path, due: str) -> None:
    path = export(tmp_path, line(999, due=due))
    assert refused(cli, path) == (f"{path}:{GOOD + 2}: column 'Echéance': a date before 1900 "
                                  f"or after 2100: {due!r}")


def test_as_of_far_in_the_future_is_refused(cli: Cli) -> None:
    result = cli(["escalate", "--as-of", "31/12/9999"], ok=False)
    assert result.exit_code == 2
    assert "a date before 1900 or after 2100: '31/12/9999'" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_cell_longer_than_the_csv_limit(cli: Cli, tmp_path: Path) -> None:
    path = export(tmp_path, line(999, name="N" * 200_000))
    assert refused(cli, path) == f"{path}:{GOOD + 2}: a cell longer than 131,072 characters"


def test_a_value_longer_than_its_column(cli: Cli, tmp_path: Path) -> None:
    path = export(tmp_path, line(999, name="N" * 201))
    assert refused(cli, path) == (f"{path}:{GOOD + 2}: column 'Nom': 201 characters, more than "
                                  "the 200 this column takes")
    path = export(tmp_path, line(999, code="C" * 65))
    assert refused(cli, path) == (f"{path}:{GOOD + 2}: column 'Code': 65 characters, more than "
                                  "the 64 this column takes")


def test_a_byte_neither_utf8_nor_cp1252(cli: Cli, tmp_path: Path) -> None:
    path = export(tmp_path, b"C999\t\tDANI\x81RE" + line(999).encode()[len("C999\t\tCLIENT 999"):]
                  + b"\n", encoding="cp1252")
    assert refused(cli, path) == (f"{path}:{GOOD + 2}: byte 0x81 at column 11 is neither UTF-8 "
                                  "nor Windows-1252: save the file as UTF-8")


def test_a_file_mixing_utf8_and_cp1252(cli: Cli, tmp_path: Path) -> None:
    path = export(tmp_path, line(999, name="DANIÈRE").encode("cp1252") + b"\n"
                  + line(1000, name="DANIÈRE").encode("utf-8") + b"\n", encoding="ascii")
    assert refused(cli, path) == (f"{path}:{GOOD + 2}: the file mixes encodings (Windows-1252 "
                                  f"on line {GOOD + 2}, UTF-8 on line {GOOD + 3}): save it whole "
                                  "as UTF-8")


def test_a_cp1252_export_still_imports(cli: Cli, tmp_path: Path) -> None:
    path = export(tmp_path, line(999, name="DANIÈRE FLORENCE"), encoding="cp1252")
    assert "301 new" in cli(["import", "invoices", str(path)]).stdout


def test_a_cell_beyond_the_header(cli: Cli, tmp_path: Path) -> None:
    path = export(tmp_path, line(999, extra="EXTRA"))
    assert refused(cli, path) == (f"{path}:{GOOD + 2}: 18 cells where the header has 17 columns "
                                  "(a separator inside a cell?)")
    path = export(tmp_path, line(999) + "\t\t")  # trailing separators hold nothing
    assert "301 new" in cli(["import", "invoices", str(path)]).stdout


@pytest.mark.parametrize(("char", "shown"), [("\x1b", "U+001B"), ("\x00", "U+0000"),
                                             ("\x85", "U+0085"), ("\x7f", "U+007F")])
def test_a_control_character_in_a_code_or_a_name(cli: Cli, tmp_path: Path, char: str,
                                                 shown: str) -> None:
    path = export(tmp_path, line(999, name=f"EVIL{char}]0;TITLE"))
    assert refused(cli, path) == (f"{path}:{GOOD + 2}: column 'Nom': a control character "
                                  f"({shown}) in the cell")
    customers = tmp_path / "customers.csv"
    customers.write_text(f"code;name\nX1;A\nX{char}2;B\n", encoding="utf-8")
    assert refused(cli, customers, "customers") == (
        f"{customers}:3: column 'code': a control character ({shown}) in the cell")


def test_a_carriage_return_inside_a_cell(cli: Cli, tmp_path: Path) -> None:
    path = export(tmp_path, line(999, name="DA\rNIERE"))
    assert refused(cli, path) == f"{path}:{GOOD + 2}: a line break (CR) inside a cell"


def test_json_nested_too_deep(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "invoices.json"
    path.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    assert refused(cli, path) == f"{path}: JSON nested too deep: not an export"


def test_json_list_where_text_is_expected(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "invoices.json"
    record = {"customer_code": ["C1"], "customer_name": "A", "invoice_number": "F1",
              "invoice_date": "2024-01-01", "due_date": "2024-01-31", "total": "1",
              "remaining": "1"}
    path.write_text(json.dumps([record]), encoding="utf-8")
    assert refused(cli, path) == (f"{path}: record 1: field 'customer_code': a list where text "
                                  "or a number is expected")
    path.write_text(json.dumps([{**record, "customer_code": "C1", "total": {"x": 1}}]),
                    encoding="utf-8")
    assert refused(cli, path) == (f"{path}: record 1: field 'total': an object where text or a "
                                  "number is expected")


def test_a_customer_twice_in_one_customers_file(cli: Cli, tmp_path: Path) -> None:
    customers = tmp_path / "customers.csv"
    customers.write_text("code;name\nX1;A\nX2;B\nX1;C\n", encoding="utf-8")
    assert refused(cli, customers, "customers") == (
        f"{customers}:4: column 'code': customer X1 already appears on line 2")
    assert "no customer with code 'X2'" in cli("customer X2", ok=False).stderr


@pytest.mark.parametrize("language", ["xx", "enfant", "frx", "de"])
def test_an_unknown_language(cli: Cli, tmp_path: Path, language: str) -> None:
    customers = tmp_path / "customers.csv"
    customers.write_text(f"code;name;language\nX1;A;fr-FR\nX2;B;{language}\n", encoding="utf-8")
    assert refused(cli, customers, "customers") == (
        f"{customers}:3: column 'language': language must be fr or en, not {language!r}")


def test_languages_as_codes_and_words(cli: Cli, tmp_path: Path) -> None:
    customers = tmp_path / "customers.csv"
    customers.write_text("code;name;language\nX1;A;fr-FR\nX2;B;English\nX3;C;en_GB\n"
                         "X4;D;Français\n", encoding="utf-8")
    cli(["import", "customers", str(customers)])
    heads = [cli(f"customer X{n}").stdout.splitlines()[0] for n in range(1, 5)]
    assert [head.rsplit(", ", 1)[1] for head in heads] == ["fr)", "en)", "en)", "fr)"]


def test_a_fifo_is_refused_not_waited_on(cli: Cli, tmp_path: Path) -> None:
    fifo = tmp_path / "invoices.tsv"
    os.mkfifo(fifo)
    result: list[str] = []
    worker = threading.Thread(target=lambda: result.append(refused(cli, fifo)), daemon=True)
    worker.start()
    worker.join(30)
    assert not worker.is_alive(), "the import waited on the FIFO"
    assert result == [f"{fifo}: a named pipe (FIFO), not a file: refused"]


@pytest.mark.parametrize("kind", ["invoices", "customers", "payments", "fec", "facturx", "bank",
                                  "cdar"])
def test_a_device_is_refused_by_every_import(cli: Cli, kind: str) -> None:
    result = cli(["import", kind, "/dev/zero"], ok=False)
    assert result.exit_code in (1, 2)  # 2: click refuses it before the import runs
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_a_file_over_the_size_limit(cli: Cli, tmp_path: Path, settings_path: Path,
                                    database_url: str) -> None:
    write_settings(settings_path, {"database.url": database_url, "imports.max_file_mb": 1})
    path = export(tmp_path, "\n".join(line(n, name="N" * 190) for n in range(1000, 6000)))
    size = f"{path.stat().st_size / 2**20:.1f} MB"
    assert refused(cli, path) == (f"{path}: {size}, larger than the 1.0 MB an import takes "
                                  "(imports.max_file_mb)")


@pytest.mark.parametrize(("column", "value", "message"), [
    ("CompAuxLib", "N" * 201, "201 characters, more than the 200 Relances keeps"),
    ("PieceRef", "F" * 65, "65 characters, more than the 64 Relances keeps"),
    ("CompAuxNum", "C\x1b001", "a control character (U+001B) in the value"),
])
def test_a_fec_value_that_does_not_fit(cli: Cli, tmp_path: Path, column: str, value: str,
                                       message: str) -> None:
    lines = TAB_FEC.read_text(encoding="utf-8-sig").splitlines()
    header = lines[0].split("\t")
    cells = lines[1].split("\t")
    cells[header.index(column)] = value
    lines[1] = "\t".join(cells)
    bad = tmp_path / "bad.fec.txt"
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert refused(cli, bad, "fec") == f"{bad}:2: {column}: {message}"
