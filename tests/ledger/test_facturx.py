"""Reading Factur-X invoices: real PDFs made here with WeasyPrint and the factur-x library."""

from __future__ import annotations

import datetime as dt
import socket
import time
from decimal import Decimal
from pathlib import Path

import pytest
from facturx_samples import (
    ADDRESS,
    FULL_BUYER,
    MINIMUM_XML,
    en16931_xml,
    facturx_pdf,
    plain_pdf,
)
from lxml import etree

from relances.daemon.errors import LedgerError
from relances.daemon.ledger import facturx as reader
from relances.daemon.ledger.facturx import facturx_files, looks_like_pdf, read_facturx


@pytest.fixture(scope="module")
def base_pdf() -> bytes:
    return plain_pdf()


def refusal(path: Path) -> str:
    with pytest.raises(LedgerError) as caught:
        read_facturx(path)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_en16931_invoice_gives_every_field(tmp_path: Path, base_pdf: bytes) -> None:
    path = facturx_pdf(tmp_path, base_pdf, en16931_xml())
    invoice = read_facturx(path)
    assert invoice.level == "en16931"
    assert invoice.path == path
    row = invoice.row
    assert (row.customer_code, row.customer_name, row.number) == (
        "CLI042", "Boulangerie Martin SARL", "F2024-001")
    assert row.invoice_date == dt.date(2024, 1, 15)
    assert row.due_date == dt.date(2024, 2, 14)  # the XML's, not 30 days after
    assert row.total == Decimal("1200.00")
    assert row.remaining == Decimal("900.00")  # 300 € prepaid
    assert row.customer_kind is None  # the SIREN below makes a new customer a business
    assert row.email == "compta@martin.example"
    assert row.where == str(path)
    assert (row.affiliate_code, row.payment_method, row.pdf_path, row.level,
            row.last_reminded_on) == (None, None, None, 0, None)
    assert invoice.customer == {
        "name": "Boulangerie Martin SARL", "email": "compta@martin.example",
        "address_line1": "12 rue de la République", "address_line2": "Bâtiment B",
        "postal_code": "69002", "city": "Lyon", "country": "FR",
        "siren": "732829320", "vat_number": "FR44732829320",
    }


def test_minimum_invoice_is_due_after_the_payment_terms(tmp_path: Path, base_pdf: bytes) -> None:
    path = facturx_pdf(tmp_path, base_pdf, MINIMUM_XML, level="minimum")
    invoice = read_facturx(path)
    assert invoice.level == "minimum"
    assert invoice.row.invoice_date == dt.date(2024, 1, 31)
    assert invoice.row.due_date == dt.date(2024, 3, 1)  # 31/01 + 30 days (2024 is a leap year)
    assert read_facturx(path, payment_terms_days=45).row.due_date == dt.date(2024, 3, 16)
    assert invoice.row.customer_code == "SIREN-404833048"
    assert (invoice.row.total, invoice.row.remaining) == (Decimal("120.00"), Decimal("120.00"))
    assert invoice.row.email is None
    assert invoice.customer == {"name": "Garage Petit", "siren": "404833048"}


def test_buyer_with_a_siret_only(tmp_path: Path, base_pdf: bytes) -> None:
    buyer = ('<ram:Name>Martin</ram:Name><ram:SpecifiedLegalOrganization>'
             '<ram:ID schemeID="0009">73282932000074</ram:ID></ram:SpecifiedLegalOrganization>'
             '<ram:PostalTradeAddress><ram:CountryID>FR</ram:CountryID></ram:PostalTradeAddress>')
    invoice = read_facturx(facturx_pdf(tmp_path, base_pdf, en16931_xml(buyer)))
    assert invoice.row.customer_code == "SIREN-732829320"
    assert invoice.row.customer_kind is None  # the SIREN implies a business on import
    assert invoice.customer == {"name": "Martin", "country": "FR", "siren": "732829320"}


def test_buyer_with_a_vat_number_only(tmp_path: Path, base_pdf: bytes) -> None:
    buyer = ('<ram:Name>Müller GmbH</ram:Name><ram:SpecifiedTaxRegistration>'
             '<ram:ID schemeID="VA">DE 136 695 976</ram:ID></ram:SpecifiedTaxRegistration>')
    invoice = read_facturx(facturx_pdf(tmp_path, base_pdf, en16931_xml(buyer)))
    assert invoice.row.customer_code == "TVA-DE136695976"
    assert invoice.row.customer_kind is None  # a VAT number alone does not say "business" here
    assert invoice.customer == {"name": "Müller GmbH", "vat_number": "DE136695976"}


def test_a_pdf_without_factur_x_data(tmp_path: Path, base_pdf: bytes) -> None:
    path = tmp_path / "f1.pdf"
    path.write_bytes(base_pdf)
    assert refusal(path) == f"{path}: no Factur-X data in this PDF"


def test_an_xml_failing_the_schema_check(tmp_path: Path, base_pdf: bytes) -> None:
    xml = en16931_xml().replace("<ram:TypeCode>380", "<ram:Note>x</ram:Note><ram:TypeCode>380")
    line = next(n for n, text in enumerate(xml.splitlines(), 1) if "<ram:Note>" in text)
    path = facturx_pdf(tmp_path, base_pdf, xml, valid=False)
    assert refusal(path) == (
        f"{path}: the Factur-X XML does not pass the schema check (en16931): Element 'Note': "
        f"This element is not expected. Expected is ( TypeCode )., line {line}")


def test_an_invalid_siren(tmp_path: Path, base_pdf: bytes) -> None:
    xml = en16931_xml(FULL_BUYER.replace("732829320</ram:ID></ram:Spec", "732829321</ram:ID></ram:Spec"))
    path = facturx_pdf(tmp_path, base_pdf, xml)
    assert refusal(path) == (f"{path}: ram:BuyerTradeParty/ram:SpecifiedLegalOrganization/ram:ID: "
                             f"'732829321' is not a valid SIREN or SIRET")


def test_an_invalid_vat_number(tmp_path: Path, base_pdf: bytes) -> None:
    path = facturx_pdf(tmp_path, base_pdf, en16931_xml(FULL_BUYER.replace("FR44", "FR45")))
    assert refusal(path) == (f"{path}: ram:BuyerTradeParty/ram:SpecifiedTaxRegistration/ram:ID: "
                             f"'FR45732829320' is not a valid intra-EU VAT number")


def test_a_file_that_is_not_a_pdf(tmp_path: Path) -> None:
    path = tmp_path / "f1.pdf"
    path.write_text("Code;Nom\nCLI042;Martin\n", encoding="utf-8")
    assert refusal(path) == f"{path}: not a PDF file (a Factur-X invoice is a PDF)"
    assert refusal(tmp_path / "absent.pdf") == f"{tmp_path / 'absent.pdf'}: no such file"


def test_a_buyer_without_any_identifier(tmp_path: Path, base_pdf: bytes) -> None:
    path = facturx_pdf(tmp_path, base_pdf, en16931_xml(f"<ram:Name>Martin</ram:Name>{ADDRESS}"))
    assert refusal(path) == (
        f"{path}: the buyer has no identifier (ram:BuyerTradeParty has no ram:ID, SIREN or "
        f"VAT number): refused rather than matched on a name")


def test_a_credit_note(tmp_path: Path, base_pdf: bytes) -> None:
    path = facturx_pdf(tmp_path, base_pdf, en16931_xml(type_code="381"))
    assert refusal(path) == (
        f"{path}: a credit note (ram:TypeCode 381), not an invoice: credit notes are not "
        f"imported, enter the credit on the invoice it corrects")
    # A corrected invoice (384) replaces another: reading both would claim twice.
    path = facturx_pdf(tmp_path, base_pdf, en16931_xml(type_code="384"), name="f2.pdf")
    assert refusal(path) == (f"{path}: ram:TypeCode '384': only invoices (380), prepayment "
                             f"invoices (386) and self-billed invoices (389) are read")


def test_an_invoice_not_in_euros(tmp_path: Path, base_pdf: bytes) -> None:
    path = facturx_pdf(tmp_path, base_pdf, en16931_xml(currency="USD"))
    assert refusal(path) == (f"{path}: ram:InvoiceCurrencyCode: the invoice is in USD; "
                             f"only invoices in euros (EUR) are read")


def test_a_negative_total(tmp_path: Path, base_pdf: bytes) -> None:
    path = facturx_pdf(tmp_path, base_pdf, en16931_xml(grand_total="-1200.00"))
    assert refusal(path) == f"{path}: ram:GrandTotalAmount: negative amount -1200.00"


DTD_REFUSED = ("the Factur-X XML declares a DTD (<!DOCTYPE>), which an invoice never needs: "
               "refused, its entities are not read")


def test_an_external_entity_is_neither_read_nor_fetched(tmp_path: Path, base_pdf: bytes) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("MOT-DE-PASSE", encoding="utf-8")
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        head = (f'<!DOCTYPE rsm:CrossIndustryInvoice [<!ENTITY file SYSTEM "{secret.as_uri()}">'
                f'<!ENTITY web SYSTEM "http://127.0.0.1:{port}/x.xml">]>')
        xml = en16931_xml(FULL_BUYER.replace("Boulangerie Martin SARL", "&file;&web;"), head=head)
        path = facturx_pdf(tmp_path, base_pdf, xml, valid=False)
        message = refusal(path)
        server.settimeout(0.2)
        with pytest.raises(TimeoutError):
            server.accept()  # nobody connected
    assert message == f"{path}: {DTD_REFUSED}"
    assert "MOT-DE-PASSE" not in message


def test_a_billion_laughs_is_not_expanded(tmp_path: Path, base_pdf: bytes) -> None:
    entities = ['<!ENTITY lol "lol">'] + [
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10)]
    head = f"<!DOCTYPE rsm:CrossIndustryInvoice [{''.join(entities)}]>"
    xml = en16931_xml(FULL_BUYER.replace("Boulangerie Martin SARL", "&lol9;"), head=head)
    path = facturx_pdf(tmp_path, base_pdf, xml, valid=False)
    started = time.monotonic()
    message = refusal(path)
    assert time.monotonic() - started < 5
    # libxml2 (2.14) stops at the amplification before the DTD is even looked at,
    # so the library skips the attachment and says why; else ours refuses the DTD.
    assert message == f"{path}: {DTD_REFUSED}" or (
        message.startswith(f"{path}: no Factur-X data in this PDF (File factur-x.xml is not a "
                           f"valid XML file: Maximum entity amplification factor exceeded"))
    assert "lollol" not in message
    # The library's own parse ran under the safe parser; lxml's default is back.
    assert etree.fromstring(b"<!DOCTYPE r [<!ENTITY a 'b'>]><r>&a;</r>").text == "b"


def test_an_oversized_xml(tmp_path: Path, base_pdf: bytes) -> None:
    padding = "<!--" + "x" * (6 * 1024 * 1024) + "-->"  # compresses to a small PDF
    xml = en16931_xml().replace("<rsm:ExchangedDocumentContext>", padding + "<rsm:ExchangedDocumentContext>")
    path = facturx_pdf(tmp_path, base_pdf, xml, valid=False)
    assert refusal(path) == f"{path}: the Factur-X XML is 6 MB, more than the 5 MB an invoice may be"


def test_an_oversized_pdf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader, "MAX_PDF_BYTES", 1024 * 1024)
    path = tmp_path / "big.pdf"
    path.write_bytes(b"%PDF-1.7\n" + b"\0" * (3 * 512 * 1024))
    assert refusal(path) == f"{path}: the file is 1.5 MB, more than the 1 MB a Factur-X PDF may be"


def test_a_broken_pdf(tmp_path: Path, base_pdf: bytes) -> None:
    path = tmp_path / "f1.pdf"
    path.write_bytes(base_pdf[:200])
    assert refusal(path).startswith(f"{path}: cannot read this PDF: ")


def test_facturx_files_of_a_folder(tmp_path: Path, base_pdf: bytes) -> None:
    folder = tmp_path / "inbox"
    (folder / "2024-02").mkdir(parents=True)
    (folder / ".trash").mkdir()
    (folder / "b.pdf").write_bytes(base_pdf)
    (folder / "2024-02" / "a.PDF").write_bytes(base_pdf)
    (folder / ".trash" / "old.pdf").write_bytes(base_pdf)
    (folder / "notes.txt").write_text("à relancer", encoding="utf-8")
    single = tmp_path / "given.txt"
    single.write_text("x", encoding="utf-8")
    assert facturx_files([folder]) == [folder / "2024-02" / "a.PDF", folder / "b.pdf"]
    assert facturx_files([single, folder, folder / "b.pdf"]) == [
        single, folder / "2024-02" / "a.PDF", folder / "b.pdf"]
    with pytest.raises(LedgerError, match="^.*absent: no such file or folder$"):
        facturx_files([folder, tmp_path / "absent"])


def test_looks_like_pdf(base_pdf: bytes) -> None:
    assert looks_like_pdf(base_pdf[:8])
    assert looks_like_pdf(b"\r\n%PDF-1.4\n")
    assert not looks_like_pdf(b"Code;Nom\n")
    assert not looks_like_pdf(b"")
    assert not looks_like_pdf(b"PK\x03\x04")
