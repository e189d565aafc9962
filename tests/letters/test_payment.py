"""How to pay, on the letter: IBAN, the RF reference, and an EPC QR code that really scans.

The QR code is decoded for real: the PDF page is rasterised by ``pdftoppm``
(poppler-utils) and read by ``zbarimg`` (zbar-tools).  Without those tools
the decoding tests skip, except under CI, where they fail.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from babel.numbers import format_currency
from helpers import unavailable
from letters_fixtures import (  # noqa: F401
    AS_OF,
    SENDER,
    make_settings,
    pdf_text,
    sessions_fixture,
)
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from relances.daemon.config import Settings
from relances.daemon.errors import ConfigError
from relances.daemon.ledger.references import (
    format_reference,
    invoice_reference,
    statement_reference,
)
from relances.daemon.letters import payment
from relances.daemon.letters.documents import LetterJob, prepare_letter, prepare_statement
from relances.daemon.letters.mergefields import sample_context
from relances.daemon.letters.pool import Renderer
from relances.daemon.models import Customer, Invoice

Sessions = async_sessionmaker[AsyncSession]

# A valid French IBAN (checked by test_the_test_iban_is_valid) and its bank's BIC.
IBAN = "FR76 3000 6000 0112 3456 7890 189"
IBAN_COMPACT = "FR7630006000011234567890189"
BIC = "AGRIFRPPXXX"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        package = "zbar-tools" if name == "zbarimg" else "poppler-utils"
        reason = f"{name} is not installed (apt-get install {package}): the QR code cannot be decoded"
        unavailable(reason)
    return path


def decode_qr(pdf: bytes, folder: Path) -> str | None:
    """The text of the QR code on the PDF's first page, as a phone would read it; None if none."""
    pdftoppm, zbarimg = _tool("pdftoppm"), _tool("zbarimg")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "letter.pdf").write_bytes(pdf)
    subprocess.run([pdftoppm, "-png", "-r", "200", "-f", "1", "-l", "1", "-singlefile",
                    str(folder / "letter.pdf"), str(folder / "page")],
                   check=True, capture_output=True, timeout=60)
    # -Sbinary: the symbol's bytes as they are; zbar would otherwise guess a
    # charset (the payload declares UTF-8 on its third line, not in an ECI).
    result = subprocess.run([zbarimg, "--raw", "-q", "-Sbinary", str(folder / "page.png")],
                            capture_output=True, timeout=60)
    if result.returncode == 4:  # no symbol found
        return None
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout.decode("utf-8")


def one_line(pdf: bytes) -> str:
    return " ".join(pdf_text(pdf).split())


@pytest.fixture(name="settings")
def settings_fixture(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, sender={**SENDER, "iban": IBAN, "bic": BIC})


async def letter_job(sessions: Sessions, settings: Settings, number: str,
                     **kw: Any) -> tuple[LetterJob, Invoice]:
    async with sessions() as session:
        job = await prepare_letter(session, settings, number, as_of=AS_OF, **kw)
        invoice = (await session.execute(
            select(Invoice).where(Invoice.number == number))).scalar_one()
    return job, invoice


def test_the_test_iban_is_valid() -> None:
    from schwifty import IBAN as Iban

    iban = Iban(IBAN)
    assert iban.compact == IBAN_COMPACT and iban.formatted == IBAN
    assert str(iban.bic) == BIC


async def test_level_1_letter_shows_the_account_the_reference_and_a_qr_code_that_scans(
        sessions: Sessions, settings: Settings, tmp_path: Path) -> None:
    job, invoice = await letter_job(sessions, settings, "COD_F1031", level=1)
    reference = invoice_reference("COD_F1031", invoice.id)
    assert reference == f"{reference[:4]}X{invoice.id}"  # "_" in the number: the id form
    assert job.context["payment"]["reference"] == format_reference(reference)
    assert job.context["invoices"][0]["payment_reference"] == format_reference(reference)
    amount = job.context["totals"]["amount_due"]
    assert job.context["payment"]["amount"] == amount == invoice.remaining  # level 1: no charges

    rendered = Renderer(settings, workers=1).render_sync(job)
    text = one_line(rendered.pdf)
    assert f"IBAN {IBAN}" in text and f"BIC {BIC}" in text
    assert (f"Merci d'indiquer la référence {format_reference(reference)} dans le libellé "
            "de votre virement") in text
    assert "Scannez ce code avec votre application bancaire" in text
    assert "572,66 €" in text

    payload = decode_qr(rendered.pdf, tmp_path / "qr")
    assert payload is not None, "no QR code found on the letter"
    assert payload.split("\n") == [
        "BCD", "002", "1", "SCT",
        BIC,
        "Codial Démo SARL",               # UTF-8 survives the round trip
        IBAN_COMPACT,
        f"EUR{amount:.2f}",
        "",
        reference,
        "",
    ]
    assert f"EUR{amount:.2f}" == "EUR572.66"


async def test_statement_asks_for_the_total_under_its_own_reference(
        sessions: Sessions, settings: Settings, tmp_path: Path) -> None:
    async with sessions() as session:
        job = await prepare_statement(session, settings, "INT01", as_of=AS_OF, level=2)
        customer = (await session.execute(
            select(Customer).where(Customer.code == "INT01"))).scalar_one()
        invoices = {i.number: i for i in (await session.execute(
            select(Invoice).where(Invoice.customer_id == customer.id))).scalars()}
    reference = statement_reference(customer.id, AS_OF)
    assert reference[4:] == f"S{customer.id}D241122"
    amount = job.context["totals"]["amount_due"]
    assert job.context["payment"]["reference"] == format_reference(reference)
    assert job.context["payment"]["amount"] == amount

    pdf = Renderer(settings, workers=1).render_sync(job).pdf
    text = one_line(pdf)
    assert f"IBAN {IBAN}" in text
    assert f"Merci d'indiquer la référence {format_reference(reference)} dans le libellé" in text
    # Each invoice keeps its own reference, for a payment of one invoice only.
    for row in job.context["invoices"]:
        expected = format_reference(invoice_reference(row["number"], invoices[row["number"]].id))
        assert row["payment_reference"] == expected
        assert f"{row['number']} {expected}" in text

    payload = decode_qr(pdf, tmp_path / "qr")
    assert payload is not None, "no QR code found on the statement"
    lines = payload.split("\n")
    assert lines[:4] == ["BCD", "002", "1", "SCT"]
    assert lines[4] == BIC
    assert lines[5] == "Codial Démo SARL"
    assert lines[6] == IBAN_COMPACT
    assert lines[7] == f"EUR{amount:.2f}"
    assert lines[8:] == ["", reference, ""]


async def test_a_customers_credit_is_set_against_the_next_statement(
        sessions: Sessions, settings: Settings, tmp_path: Path) -> None:
    async with sessions.begin() as session:
        customer = (await session.execute(
            select(Customer).where(Customer.code == "INT01"))).scalar_one()
        customer.credit = Decimal("80.40")
    async with sessions() as session:
        job = await prepare_statement(session, settings, "INT01", as_of=AS_OF, level=2)
        letter = await prepare_letter(session, settings, "COD_F1026", as_of=AS_OF, level=2)
    totals = job.context["totals"]
    assert totals["credit"] == Decimal("80.40")
    assert totals["to_pay"] == totals["amount_due"] - Decimal("80.40")
    assert job.context["payment"]["amount"] == totals["to_pay"]
    assert letter.context["totals"]["credit"] == 0  # a letter asks for its invoice
    pdf = Renderer(settings, workers=1).render_sync(job).pdf
    text = one_line(pdf)
    assert "Crédit en votre faveur (trop-perçu) − 80,40 €" in text
    shown = " ".join(format_currency(totals["to_pay"], "EUR", locale="fr_FR").split())
    assert f"Total à régler {shown}" in text
    payload = decode_qr(pdf, tmp_path / "qr")
    assert payload is not None and payload.split("\n")[7] == f"EUR{totals['to_pay']:.2f}"


async def test_english_letter_says_the_same(sessions: Sessions, settings: Settings) -> None:
    job, invoice = await letter_job(sessions, settings, "NOR-77")
    reference = format_reference(invoice_reference("NOR-77", invoice.id))
    text = one_line(Renderer(settings, workers=1).render_sync(job).pdf)
    assert f"Please quote the reference {reference} in the description of your transfer" in text
    assert f"IBAN {IBAN}" in text and "Scan this code with your banking app" in text


async def test_no_iban_no_qr_code_and_no_reference_sentence(
        sessions: Sessions, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, sender={**SENDER, "iban": "", "bic": ""})
    job, _ = await letter_job(sessions, settings, "COD_F1031", level=1)
    assert job.context["payment"]["qr"] == "" and job.context["payment"]["iban"] == ""
    pdf = Renderer(settings, workers=1).render_sync(job).pdf
    text = one_line(pdf)
    assert "IBAN" not in text and "Merci d'indiquer la référence" not in text
    assert "Scannez" not in text and "RF" not in text
    assert decode_qr(pdf, tmp_path / "qr") is None


def test_an_iban_that_does_not_validate_is_refused_at_load(tmp_path: Path) -> None:
    """A typo in the seller's IBAN would send payments astray or leave every letter
    without its QR code: the settings are refused, naming the key."""
    with pytest.raises(ConfigError, match=r"sender\.iban: 'FR76 3000 6000 0112 3456 7890 188' "
                                          r"is not a valid IBAN"):
        make_settings(tmp_path, sender={**SENDER, "iban": "FR76 3000 6000 0112 3456 7890 188"})
    with pytest.raises(ConfigError, match=r"sender\.bic: 'AGRIFRPP!' is not a valid BIC"):
        make_settings(tmp_path, sender={**SENDER, "iban": IBAN, "bic": "AGRIFRPP!"})


def test_qr_is_a_plain_svg_data_uri(settings: Settings) -> None:
    context = sample_context(settings)
    qr = context["payment"]["qr"]
    assert isinstance(qr, str) and qr.startswith("data:image/svg+xml;base64,")
    assert context["payment"]["iban"] == IBAN and context["payment"]["bic"] == BIC
    # Nothing a template could not print as text; no markup, no objects.
    assert all(isinstance(v, str | int | float | bool | type(None)) or hasattr(v, "quantize")
               for v in context["payment"].values())


def test_nothing_to_pay_makes_no_qr_code(settings: Settings) -> None:
    from decimal import Decimal

    fields = payment.payment_fields(settings, reference="RF18539007547034", amount=Decimal("0"))
    assert fields["qr"] == "" and fields["reference"] == "RF18 5390 0754 7034"
    assert fields["iban"] == IBAN


def test_sample_invoices_have_ids_for_their_references(settings: Settings) -> None:
    context = sample_context(settings, kind="statement", level=2)
    assert [i["payment_reference"] for i in context["invoices"]] == [
        format_reference(invoice_reference("COD_F1026", 1026)),
        format_reference(invoice_reference("COD_F1031", 1031))]
    assert context["payment"]["reference"] == format_reference(
        statement_reference(1, dt.date(2024, 11, 22)))


def test_codes_drawn_under_the_fixed_mask_scan_whatever_the_payload(
        settings: Settings, tmp_path: Path) -> None:
    # The mask is fixed (payment.QR_MASK) rather than scored per code: codes of
    # payloads of every length and content must still read back exactly.
    import random

    from weasyprint import HTML

    from relances.daemon.ledger.references import epc_qr_payload

    rng = random.Random(11)
    names = ["SARL Exemple", "Boulangerie Pâtisserie Élodie & Fils", "ÉTS MARTIN-LEFÈVRE SAS",
             "A" * 70]
    payloads = []
    for n in range(16):
        reference = invoice_reference(f"COD_F{rng.randint(1, 10**8)}", rng.randint(1, 10**7))
        payloads.append(epc_qr_payload(
            bic=BIC, name=names[n % len(names)], iban=IBAN_COMPACT,
            amount=Decimal(rng.randint(1, 99_999_999_999)) / 100, reference=reference))
    assert len({len(p) for p in payloads}) > 4  # several QR versions, several fills
    for n, text in enumerate(payloads):
        uri = payment.svg_data_uri(payment.qr_svg(text))
        pdf = HTML(string=f'<img src="{uri}" style="width: 6cm">').write_pdf()
        assert decode_qr(pdf, tmp_path / str(n)) == text
