"""Reading the FEC: open receivables of the customer accounts, or the whole file refused."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from helpers import ROOT, SAMPLE

from relances.daemon.errors import LedgerError
from relances.daemon.ledger.fec import FecLedger, fec_ledger, looks_like_fec
from relances.daemon.ledger.readers import InvoiceRow

FEC = ROOT / "tests" / "ledger" / "fec"
# Tab, UTF-8 with BOM, CRLF, Debit/Credit, auxiliary accounts, detailed à-nouveaux.
AUX = FEC / "812345678FEC20241231.txt"
# Pipe, ISO-8859-15, Montant/Sens, one 411 account per customer, aggregated
# à-nouveaux, a DateEcheance column.
PER_ACCOUNT = FEC / "798765432FEC20241231.txt"

COLUMNS = ["JournalCode", "JournalLib", "EcritureNum", "EcritureDate", "CompteNum", "CompteLib",
           "CompAuxNum", "CompAuxLib", "PieceRef", "PieceDate", "EcritureLib", "Debit", "Credit",
           "EcritureLet", "DateLet", "ValidDate", "Montantdevise", "Idevise"]
SG = "Société Générale Étienne"
PAID = "Réglée dans la comptabilité (règlement non lettré)"
LETTERED = "Lettrée dans la comptabilité"


def by_number(ledger: FecLedger) -> dict[str, InvoiceRow]:
    return {row.number: row for row in ledger.invoices}


def remaining(ledger: FecLedger) -> dict[str, Decimal]:
    return {row.number: row.remaining for row in ledger.invoices}


def cells(journal: str, entry: str, account: str, debit: str = "", credit: str = "", *,
          aux: str = "", name: str = "", piece: str = "", date: str = "20240115", label: str = "",
          letter: str = "", extra: tuple[str, ...] = ()) -> list[str]:
    """One FEC line as cells (the customer's name goes to CompAuxLib or CompteLib)."""
    account_label, aux_label = ("Clients", name) if aux else (name, "")
    return [journal, journal, entry, date, account, account_label, aux, aux_label, piece, date,
            label, debit, credit, letter, "", "", "", "", *extra]


def sale(entry: str, customer: str, piece: str, amount: str, date: str = "20240115",
         **more: str) -> list[list[str]]:
    more.setdefault("name", customer)
    return [cells("VE", entry, customer, amount, piece=piece, date=date, **more),
            cells("VE", entry, "706000", "", amount, piece=piece, date=date, name="Ventes")]


def payment(entry: str, customer: str, piece: str, amount: str, date: str = "20240301",
            label: str = "", letter: str = "") -> list[list[str]]:
    return [cells("BQ", entry, "512000", amount, piece=piece, date=date, label=label, name="Banque"),
            cells("BQ", entry, customer, "", amount, piece=piece, date=date, label=label,
                  letter=letter, name=customer)]


def write(tmp_path: Path, rows: list[list[str]], *, header: list[str] | None = None,
          separator: str = "\t", encoding: str = "utf-8") -> Path:
    path = tmp_path / "export.fec"
    lines = [header or COLUMNS, *rows]
    path.write_bytes(("\n".join(separator.join(line) for line in lines) + "\n").encode(encoding))
    return path


def refusal(path: Path) -> str:
    with pytest.raises(LedgerError) as caught:
        fec_ledger(path)
    return str(caught.value)


# --- the two real layouts -------------------------------------------------------------------

def test_tab_utf8_debit_credit_file_gives_every_invoice_with_what_remains() -> None:
    ledger = fec_ledger(AUX)
    assert ledger.lines == 54
    assert ledger.customers == {"C001": SG, "C002": "Boulangerie Martin",
                                "C003": "Garage Lefèvre SARL", "C004": "Transports Roux",
                                "C005": "Café des Arts"}
    assert [(r.customer_code, r.number, r.total, r.remaining) for r in ledger.invoices] == [
        ("C001", "FA-2023-118", Decimal("1200.00"), Decimal("0.00")),
        ("C003", "FA-2023-121", Decimal("480.00"), Decimal("0.00")),
        ("C001", "FA-2024-001", Decimal("1440.00"), Decimal("0.00")),
        ("C002", "FA-2024-002", Decimal("360.00"), Decimal("0.00")),
        ("C002", "FA-2024-003", Decimal("240.00"), Decimal("240.00")),
        ("C004", "FA-2024-004", Decimal("600.00"), Decimal("0.00")),
        ("C004", "FA-2024-005", Decimal("960.00"), Decimal("460.00")),
        ("C005", "FA-2024-006", Decimal("1800.00"), Decimal("0.00")),
        ("C003", "FA-2024-007", Decimal("720.00"), Decimal("0.00")),
        ("C001", "FA-2024-008", Decimal("2400.00"), Decimal("2400.00")),
        ("C001", "FA-2024-009", Decimal("120.50"), Decimal("120.50")),
        ("C005", "FA-2024-010", Decimal("600.00"), Decimal("400.00")),
    ]
    assert sum(r.remaining for r in ledger.invoices) == Decimal("3620.50")
    row = by_number(ledger)["FA-2024-009"]
    assert row.customer_name == SG
    assert row.where == f"{AUX}:35"
    assert (row.affiliate_code, row.email, row.level, row.last_reminded_on) == (None, None, 0, None)
    assert ledger.labels == {}


def test_only_settled_invoices_have_a_reason() -> None:
    ledger = fec_ledger(AUX)
    assert set(ledger.settled) == {r.number for r in ledger.invoices if r.remaining == 0}


def test_pipe_latin9_montant_sens_file_with_one_account_per_customer() -> None:
    ledger = fec_ledger(PER_ACCOUNT)
    assert ledger.lines == 17
    assert ledger.customers == {"411SOCGEN": SG, "411DUPONT": "Dupont Menuiserie",
                                "411COEUR": "Cœur de Lyon SARL"}
    assert remaining(ledger) == {
        "AN-411SOCGEN-20240101": Decimal("1500.00"), "AN-411DUPONT-20240101": Decimal("0.00"),
        "F240001": Decimal("1800.00"), "F240002": Decimal("240.00"), "F240003": Decimal("1080.00"),
    }
    assert by_number(ledger)["F240003"].customer_name == "Cœur de Lyon SARL"


def test_the_same_books_read_the_same_in_pipe_and_iso_8859_15(tmp_path: Path) -> None:
    text = AUX.read_text(encoding="utf-8-sig").replace("\t", "|")
    latin = tmp_path / "latin9.txt"
    latin.write_bytes(text.encode("iso-8859-15"))
    assert b"Soci\xe9t\xe9 G\xe9n\xe9rale \xc9tienne" in latin.read_bytes()
    ours, theirs = fec_ledger(AUX), fec_ledger(latin)
    assert theirs.customers["C001"] == SG
    assert [(r.number, r.customer_name, r.remaining) for r in theirs.invoices] == [
        (r.number, r.customer_name, r.remaining) for r in ours.invoices]
    assert theirs.settled == ours.settled


def test_utf8_without_bom_reads_the_name(tmp_path: Path) -> None:
    path = write(tmp_path, sale("1", "411000", "F1", "10,00", aux="C1", name=SG))
    assert fec_ledger(path).customers == {"C1": SG}


def test_montant_sens_with_plus_and_minus_one(tmp_path: Path) -> None:
    header = COLUMNS[:11] + ["Montant", "Sens"] + COLUMNS[13:]
    rows = [cells("VE", "1", "411DUPONT", "120.5", "+1", piece="F1", name="Dupont"),
            cells("VE", "1", "706000", "120,50", "-1", piece="F1", name="Ventes"),
            cells("BQ", "2", "512000", "20", "1", piece="R1", date="20240201"),
            cells("BQ", "2", "411DUPONT", "20,00", "-1", piece="R1", date="20240201")]
    ledger = fec_ledger(write(tmp_path, rows, header=header, separator="|"))
    (row,) = ledger.invoices
    assert (row.customer_code, row.total, row.remaining) == ("411DUPONT", Decimal("120.50"),
                                                             Decimal("100.50"))


def test_looks_like_fec_routes_by_the_first_line(tmp_path: Path) -> None:
    assert looks_like_fec(AUX.read_text(encoding="utf-8-sig"))
    assert looks_like_fec(PER_ACCOUNT.read_bytes().decode("iso-8859-15").split("\n")[0])
    assert looks_like_fec("\ufeff" + "|".join(COLUMNS).lower() + "\r\n")
    assert not looks_like_fec((SAMPLE / "seed.tsv").read_text(encoding="utf-8"))
    assert not looks_like_fec(";".join(COLUMNS))
    assert not looks_like_fec("\t".join(COLUMNS[:17]))
    assert not looks_like_fec("")


# --- settlement -----------------------------------------------------------------------------

def test_lettered_invoice_is_settled_with_its_reason() -> None:
    ledger = fec_ledger(AUX)
    assert by_number(ledger)["FA-2024-001"].remaining == 0
    assert ledger.settled["FA-2024-001"] == LETTERED
    assert fec_ledger(PER_ACCOUNT).settled == {"AN-411DUPONT-20240101": LETTERED}


def test_transfer_to_416_and_write_off_to_654_settle_with_their_reasons() -> None:
    settled = fec_ledger(AUX).settled
    assert settled["FA-2023-121"] == "Passée en créances douteuses (416) dans la comptabilité"
    assert settled["FA-2024-007"] == "Passée en perte (654) dans la comptabilité"


def test_unlettered_payment_naming_its_invoice_in_pieceref() -> None:
    ledger = fec_ledger(AUX)  # BQ000002: PieceRef FA-2023-118, label "Virement reçu"
    assert by_number(ledger)["FA-2023-118"].remaining == 0
    assert ledger.settled["FA-2023-118"] == PAID
    assert by_number(ledger)["FA-2024-008"].remaining == Decimal("2400.00")  # C001's next invoice


def test_unlettered_payment_naming_its_invoice_in_the_label() -> None:
    ledger = remaining(fec_ledger(AUX))
    assert ledger["FA-2024-002"] == 0  # "Chèque 4521 règlement FA-2024-002"
    assert ledger["FA-2024-003"] == Decimal("240.00")  # the payment named FA-2024-002 only
    assert ledger["FA-2024-005"] == Decimal("460.00")  # "Acompte sur FA-2024-005." (a partial)


def test_payment_naming_nothing_goes_to_the_oldest_open_invoice_then_the_next() -> None:
    ledger = fec_ledger(AUX)  # C005 pays 2 000,00 "Virement CAFE DES ARTS"
    assert remaining(ledger)["FA-2024-006"] == 0
    assert ledger.settled["FA-2024-006"] == PAID
    assert remaining(ledger)["FA-2024-010"] == Decimal("400.00")
    # The aggregated opening balance is the oldest: it is paid first.
    assert remaining(fec_ledger(PER_ACCOUNT))["AN-411SOCGEN-20240101"] == Decimal("1500.00")


def test_credit_note_cancels_the_invoice_it_names() -> None:
    ledger = fec_ledger(AUX)
    assert remaining(ledger)["FA-2024-004"] == 0
    assert ledger.settled["FA-2024-004"] == "Annulée par avoir dans la comptabilité"
    assert "AV-2024-001" not in remaining(ledger)  # a credit note is no invoice


def test_overpayment_leaves_zero_and_the_rest_pays_the_next_invoice(tmp_path: Path) -> None:
    rows = [*sale("1", "411A", "F1", "400,00"), *sale("2", "411A", "F2", "300,00", date="20240120"),
            *payment("3", "411A", "R1", "500,00", label="Règlement F1")]
    assert remaining(fec_ledger(write(tmp_path, rows))) == {"F1": Decimal("0.00"),
                                                            "F2": Decimal("200.00")}


def test_refund_takes_back_the_credit_instead_of_being_an_invoice(tmp_path: Path) -> None:
    rows = [*sale("1", "411A", "F1", "100,00"), *payment("2", "411A", "R1", "120,00"),
            *sale("3", "411A", "F2", "50,00", date="20240401"),
            cells("BQ", "4", "411A", "20,00", piece="RB1", date="20240310", label="Remboursement"),
            cells("BQ", "4", "512000", "", "20,00", piece="RB1", date="20240310")]
    assert remaining(fec_ledger(write(tmp_path, rows))) == {"F1": Decimal("0.00"),
                                                            "F2": Decimal("50.00")}


def test_lower_case_partial_lettering_counts_as_settled(tmp_path: Path) -> None:
    rows = [*sale("1", "411A", "F1", "100,00", letter="aa"),
            *payment("2", "411A", "R1", "40,00", letter="aa")]
    ledger = fec_ledger(write(tmp_path, rows))
    assert remaining(ledger) == {"F1": Decimal("0.00")}
    assert ledger.settled == {"F1": LETTERED}


def test_customer_prefix_selects_the_customer_accounts(tmp_path: Path) -> None:
    rows = [*sale("1", "411A", "F1", "100,00"), *sale("2", "4111B", "F2", "50,00")]
    ledger = fec_ledger(write(tmp_path, rows), customer_prefix="4111")
    assert [row.number for row in ledger.invoices] == ["F2"]


# --- dates and à-nouveaux -------------------------------------------------------------------

def test_due_date_from_the_payment_terms() -> None:
    rows = by_number(fec_ledger(AUX))
    assert rows["FA-2024-003"].invoice_date == dt.date(2024, 2, 5)
    assert rows["FA-2024-003"].due_date == dt.date(2024, 3, 6)
    later = by_number(fec_ledger(AUX, payment_terms_days=45))
    assert later["FA-2024-003"].due_date == dt.date(2024, 3, 21)


def test_due_date_from_the_extra_due_date_column() -> None:
    rows = by_number(fec_ledger(PER_ACCOUNT))
    assert rows["F240001"].due_date == dt.date(2024, 1, 31)
    assert rows["F240002"].due_date == dt.date(2024, 3, 15)
    assert rows["F240003"].due_date == dt.date(2024, 3, 6)  # column empty: 30 days


def test_detailed_opening_entries_are_invoices() -> None:
    rows = by_number(fec_ledger(AUX))
    assert (rows["FA-2023-118"].invoice_date, rows["FA-2023-118"].due_date,
            rows["FA-2023-118"].total) == (dt.date(2023, 12, 15), dt.date(2024, 1, 14),
                                           Decimal("1200.00"))
    assert rows["FA-2023-121"].customer_name == "Garage Lefèvre SARL"


def test_aggregated_opening_balance_is_one_item_per_customer() -> None:
    ledger = fec_ledger(PER_ACCOUNT)
    assert ledger.labels == {"AN-411SOCGEN-20240101": "Solde à nouveau",
                             "AN-411DUPONT-20240101": "Solde à nouveau"}
    item = by_number(ledger)["AN-411SOCGEN-20240101"]
    assert (item.customer_code, item.customer_name, item.invoice_date, item.total) == (
        "411SOCGEN", SG, dt.date(2024, 1, 1), Decimal("2500.00"))


def test_opening_balance_without_pieceref_is_aggregated(tmp_path: Path) -> None:
    rows = [cells("RAN", "1", "411A", "75,00", date="20240101", label="À nouveau", name="Alpha"),
            cells("RAN", "1", "110000", "", "75,00", date="20240101", label="À nouveau")]
    ledger = fec_ledger(write(tmp_path, rows))
    assert ledger.labels == {"AN-411A-20240101": "Solde à nouveau"}
    assert remaining(ledger) == {"AN-411A-20240101": Decimal("75.00")}


# --- refusals -------------------------------------------------------------------------------

def test_missing_header_column_is_named(tmp_path: Path) -> None:
    header = [name for name in COLUMNS if name != "CompAuxLib"]
    path = write(tmp_path, [], header=header)
    assert refusal(path) == f"{path}:1: column 'CompAuxLib': missing (expected as column 8)"


def test_misplaced_header_column_is_named(tmp_path: Path) -> None:
    header = list(COLUMNS)
    header[8], header[9] = header[9], header[8]
    path = write(tmp_path, [], header=header)
    assert refusal(path) == f"{path}:1: column 'PieceRef': found as column 10, expected as column 9"


def test_header_without_tab_or_pipe_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, [], separator=";")
    assert refusal(path) == f"{path}:1: not a FEC header: no tab or pipe separator"


def test_bad_date_names_line_and_column(tmp_path: Path) -> None:
    rows = [row for n in range(1, 6) for row in sale(str(n), "411A", f"F{n}", "10,00")]
    rows.append(cells("VE", "9", "411A", "10,00", date="2024-02-08", piece="F9"))
    path = write(tmp_path, rows)
    assert refusal(path) == f"{path}:12: column 'EcritureDate': not a date AAAAMMJJ: '2024-02-08'"


def test_impossible_date_in_datelet_is_refused(tmp_path: Path) -> None:
    rows = sale("1", "411A", "F1", "10,00")
    rows[0][14] = "20240230"
    path = write(tmp_path, rows)
    assert refusal(path) == f"{path}:2: column 'DateLet': not a date AAAAMMJJ: '20240230'"


@pytest.mark.parametrize(("amount", "column"), [("1 200,00", "Debit"), ("12,345", "Debit"),
                                                ("1.200,00", "Debit"), ("1e3", "Debit")])
def test_bad_amount_names_line_and_column(tmp_path: Path, amount: str, column: str) -> None:
    rows = sale("1", "411A", "F1", "10,00")
    rows[0][11] = amount
    path = write(tmp_path, rows)
    assert refusal(path) == f"{path}:2: column {column!r}: not an amount: {amount!r}"


def test_bad_sens_is_refused(tmp_path: Path) -> None:
    header = COLUMNS[:11] + ["Montant", "Sens"] + COLUMNS[13:]
    rows = [cells("VE", "1", "411A", "10,00", "X", piece="F1"),
            cells("VE", "1", "706000", "10,00", "C", piece="F1")]
    path = write(tmp_path, rows, header=header)
    assert refusal(path) == f"{path}:2: column 'Sens': not D, C, +1 or -1: 'X'"


def test_unbalanced_entry_names_the_entry_and_its_first_line(tmp_path: Path) -> None:
    rows = [*sale("1", "411A", "F1", "10,00"), *sale("2", "411A", "F2", "120,00")]
    rows[3][12] = "100,00"
    path = write(tmp_path, rows)
    assert refusal(path) == (f"{path}:4: column 'EcritureNum': entry 2 of journal VE is not "
                             f"balanced: debits 120.00, credits 100.00")


def test_short_and_long_rows_name_their_line(tmp_path: Path) -> None:
    rows = sale("1", "411A", "F1", "10,00")
    path = write(tmp_path, [rows[0], rows[1][:16]])
    assert refusal(path) == (f"{path}:3: 16 fields instead of 18 (as in the header): "
                             f"column 'Montantdevise' is missing")
    path = write(tmp_path, [rows[0] + ["x"], rows[1]])
    assert refusal(path) == f"{path}:2: 19 fields instead of 18 (as in the header)"


def test_trailing_separators_are_not_extra_fields(tmp_path: Path) -> None:
    rows = [row + [""] for row in sale("1", "411A", "F1", "10,00")]
    assert remaining(fec_ledger(write(tmp_path, rows, header=[*COLUMNS, ""]))) == {
        "F1": Decimal("10.00")}


def test_same_invoice_number_on_two_customers_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, [*sale("1", "411A", "F1", "10,00"), *sale("2", "411B", "F1", "5,00")])
    assert refusal(path) == (f"{path}:4: column 'PieceRef': invoice F1 is on customer 411B here "
                             f"and on customer 411A on line 2")


def test_invoice_without_pieceref_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, sale("1", "411A", "", "10,00"))
    assert refusal(path) == (f"{path}:2: column 'PieceRef': value is missing "
                             f"(a debit of 10.00 on customer 411A)")


def test_hostile_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.fec"
    path.write_bytes(b"\n\n")
    assert refusal(path) == f"{path}:1: the file is empty"
    path = write(tmp_path, sale("1", "411A", "F1", "10,00", label="x" * 5000))
    assert refusal(path) == f"{path}:2: longer than 4096 characters"
    path.write_bytes("\t".join(COLUMNS).encode("utf-16"))
    assert "contains NUL bytes" in refusal(path)
    with pytest.raises(ValueError):
        fec_ledger(AUX, customer_prefix="")
