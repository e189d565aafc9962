"""Which document goes to whom: prepare_letter, prepare_statement, the context."""

from __future__ import annotations

import datetime as dt
import json
import logging
import pickle
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from letters_fixtures import (  # noqa: F401
    AS_OF,
    SAMPLE_COPY,
    letters_settings_fixture,
    make_settings,
    sessions_fixture,
)
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from relances.daemon.config import Settings
from relances.daemon.errors import LedgerError, RenderError
from relances.daemon.ledger.book import record_payment
from relances.daemon.ledger.imports import import_invoices
from relances.daemon.letters.documents import LetterJob, prepare_letter, prepare_statement
from relances.daemon.models import Invoice
from relances.plugins import hookimpl
from relances.plugins.manager import PluginError, get_plugin_manager

Sessions = async_sessionmaker[AsyncSession]


async def letter(sessions: Sessions, settings: Settings, number: str, **kw: Any) -> LetterJob:
    async with sessions() as session:
        return await prepare_letter(session, settings, number, as_of=AS_OF, **kw)


async def test_level_3_letter_for_the_seed_invoice(sessions: Sessions,
                                                   letters_settings: Settings) -> None:
    job = await letter(sessions, letters_settings, "COD_F1026")
    assert (job.kind, job.level, job.language, job.template) == ("letter", 3, "fr", "letter_3.html")
    assert job.subject == "Mise en demeure – facture COD_F1026"
    assert job.filename == "relance-3-COD_F1026.pdf"
    assert job.invoice_numbers == ("COD_F1026",) and job.customer_code == "INT01"
    assert job.copy_paths == (str(letters_settings.path("invoices/COD_F1026.pdf")),)
    ctx = job.context
    assert ctx["customer"]["name"] == "INTEL"
    assert ctx["customer"]["address"] == ["2 rue de Paris", "92190 MEUDON"]
    assert ctx["invoice"]["remaining"] == Decimal("680.40")
    assert ctx["invoice"]["days_overdue"] == 288
    assert ctx["late_charges"]["claimed"] is True
    # 143 days of 2024's first half at 4,50 + 10 %, 145 of its second at 4,25 + 10 %.
    assert ctx["totals"]["interest"] == Decimal("77.17")
    assert [(p["year"], p["half"], p["annual_rate"]) for p in ctx["late_charges"]["periods"]] == [
        (2024, 1, Decimal("14.50")), (2024, 2, Decimal("14.25"))]
    assert [p["days"] for p in ctx["invoice"]["interest_periods"]] == [143, 145]
    assert ctx["totals"]["indemnity"] == Decimal("40.00")
    assert ctx["totals"]["amount_due"] == Decimal("797.57")
    assert ctx["deadline"] == AS_OF + dt.timedelta(days=8)
    assert ctx["place"] == "Lyon" and ctx["today"] == AS_OF
    # The render pool gets it by pickling: plain data only.
    assert pickle.loads(pickle.dumps(job)) == job


async def test_a_part_payment_during_the_delay_counts_from_its_day(
        sessions: Sessions, letters_settings: Settings) -> None:
    async with sessions() as session, session.begin():
        invoice = (await session.execute(
            select(Invoice).where(Invoice.number == "COD_F1026"))).scalar_one()
        await record_payment(session, invoice, amount=Decimal("80.40"),
                             paid_on=dt.date(2024, 7, 1), user="tester")
    job = await letter(sessions, letters_settings, "COD_F1026")
    # 680,40 € for the 143 days of 2024-H1 at 14,50 %, then 600 € for 145 days at 14,25 %.
    expected = (Decimal("680.40") * Decimal("0.145") * 143
                + Decimal("600.00") * Decimal("0.1425") * 145) / 365
    assert job.context["invoice"]["remaining"] == Decimal("600.00")
    assert job.context["totals"]["interest"] == expected.quantize(Decimal("0.01"))


async def test_level_override_and_level_rules(sessions: Sessions,
                                              letters_settings: Settings) -> None:
    job = await letter(sessions, letters_settings, "COD_F1026", level=1)
    assert job.level == 1 and job.subject == "Relance n°1 – facture COD_F1026"
    assert job.copy_paths == () and job.context["late_charges"]["claimed"] is False
    assert job.context["totals"]["amount_due"] == Decimal("680.40")
    with pytest.raises(RenderError, match="COD_F1100 is at level 0: nothing to send"):
        await letter(sessions, letters_settings, "COD_F1100")
    with pytest.raises(LedgerError, match="unknown invoice NOPE"):
        await letter(sessions, letters_settings, "NOPE")


async def test_missing_copy_is_an_error_naming_invoice_and_path(
        sessions: Sessions, tmp_path: Path) -> None:
    settings = make_settings(tmp_path)  # no invoices/ folder
    with pytest.raises(RenderError) as caught:
        await letter(sessions, settings, "COD_F1026")
    assert "COD_F1026" in str(caught.value)
    assert str(tmp_path / "invoices" / "COD_F1026.pdf") in str(caught.value)


async def test_level_3_without_copy_warns_but_goes_on(
        sessions: Sessions, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    levels = {n: {"attach_invoice": False, "late_charges": n == 3} for n in (1, 2, 3)}
    settings = make_settings(tmp_path, policies={"default": {"levels": levels}})
    with caplog.at_level(logging.WARNING, logger="relances.daemon.letters.documents"):
        job = await letter(sessions, settings, "COD_F1026")
    assert job.copy_paths == () and job.level == 3
    assert "COD_F1026" in caplog.text and "without a copy" in caplog.text


async def test_consumers_are_not_charged(sessions: Sessions, tmp_path: Path) -> None:
    levels = {n: {"attach_invoice": False, "late_charges": True} for n in (1, 2, 3)}
    settings = make_settings(tmp_path, policies={"default": {"levels": levels}})
    job = await letter(sessions, settings, "COD_F1023")
    assert job.context["customer"]["is_consumer"] is True
    assert job.context["late_charges"]["claimed"] is False
    assert job.context["totals"]["interest"] == 0 and job.context["totals"]["indemnity"] == 0


async def test_english_customer_gets_english_subject(sessions: Sessions,
                                                     letters_settings: Settings) -> None:
    job = await letter(sessions, letters_settings, "NOR-77")
    assert job.language == "en"
    assert job.subject == "Reminder no. 2 – invoice NOR-77"
    assert job.filename == "reminder-2-NOR-77.pdf"


async def test_statement_lists_overdue_unpaid_invoices_not_in_dispute(
        sessions: Sessions, letters_settings: Settings) -> None:
    copy = letters_settings.path("invoices/COD_F1026.pdf")
    for number in ("COD_F1031", "COD_F1100"):
        copy.with_name(f"{number}.pdf").write_bytes(copy.read_bytes())
    async with sessions() as session:
        job = await prepare_statement(session, letters_settings, "INT01", as_of=AS_OF)
    # Not COD_F1040 (in dispute), COD_F1099 (not due), COD_F1050 (paid).
    assert job.invoice_numbers == ("COD_F1026", "COD_F1031", "COD_F1100")
    assert job.kind == "statement" and job.level == 3 and job.template == "statement.html"
    assert job.context["invoice"] is None
    assert job.context["totals"]["remaining"] == Decimal("1273.06")
    assert job.context["totals"]["indemnity"] == Decimal("120.00")
    assert job.subject == "Mise en demeure – relevé de compte – INTEL"
    assert job.filename == "releve-INT01-2024-11-22.pdf"
    assert [Path(p).name for p in job.copy_paths] == [
        "COD_F1026.pdf", "COD_F1031.pdf", "COD_F1100.pdf"]
    with pytest.raises(LedgerError):
        async with sessions() as session:
            await prepare_statement(session, letters_settings, "NOBODY", as_of=AS_OF)


async def test_statement_asks_for_every_copy(sessions: Sessions, tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    with pytest.raises(RenderError, match="COD_F1026: the copy to attach is missing"):
        async with sessions() as session:
            await prepare_statement(session, settings, "INT01", as_of=AS_OF)


class ExtraFields:
    @hookimpl
    def relances_letter_context(self, context: Any, level: int, kind: str) -> dict[str, Any]:
        return {"account_manager": {"name": "Mme Durand", "since": dt.date(2020, 1, 1)},
                "seen_level": level, "seen_customer": context["customer"]["code"]}


class Hijacker:
    @hookimpl
    def relances_letter_context(self, context: Any, level: int, kind: str) -> dict[str, Any]:
        return {"customer": {"name": "someone else"}}


class Smuggler:
    @hookimpl
    def relances_letter_context(self, context: Any, level: int, kind: str) -> dict[str, Any]:
        return {"session": object()}


async def test_plugins_add_merge_fields(sessions: Sessions, letters_settings: Settings) -> None:
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(ExtraFields(), name="extra")
    job = await letter(sessions, letters_settings, "COD_F1031", pm=pm)
    assert job.context["account_manager"]["name"] == "Mme Durand"
    assert job.context["seen_level"] == 1 and job.context["seen_customer"] == "INT01"


@pytest.mark.parametrize("plugin, error", [(Hijacker, PluginError), (Smuggler, RenderError)])
async def test_plugins_cannot_replace_fields_or_pass_objects(
        sessions: Sessions, letters_settings: Settings, plugin: type, error: type) -> None:
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(plugin(), name="bad")
    with pytest.raises(error):
        await letter(sessions, letters_settings, "COD_F1031", pm=pm)


# --- invoice copies: read from the invoices folder only ----------------------------


def _export(tmp_path: Path, pdf: str, suffix: str = ".csv") -> Path:
    path = tmp_path / f"export{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps([{
            "customer_code": "INT01", "customer_name": "INTEL", "invoice_number": "COD_F2001",
            "invoice_date": "2024-10-01", "due_date": "2024-10-31", "total": "10.00",
            "remaining": "10.00", "pdf_path": pdf}]), encoding="utf-8")
    else:
        path.write_text("Customer code,Customer name,Invoice number,Invoice date,Due date,"
                        f"Total,Remaining,PDF\nINT01,INTEL,COD_F2001,01/10/2024,31/10/2024,"
                        f"10.00,10.00,{pdf}\n", encoding="utf-8")
    return path


def _outside(tmp_path: Path) -> Path:
    """A readable PDF outside the invoices folder, and a link to it inside."""
    (tmp_path / "elsewhere").mkdir(exist_ok=True)
    secret = tmp_path / "elsewhere" / "payroll.pdf"
    secret.write_bytes(SAMPLE_COPY.read_bytes())
    (tmp_path / "invoices" / "link.pdf").symlink_to(secret)
    return secret


@pytest.mark.parametrize("suffix", [".csv", ".json"])
async def test_import_refuses_a_pdf_cell_outside_the_invoices_folder(
        sessions: Sessions, letters_settings: Settings, tmp_path: Path, suffix: str) -> None:
    secret = _outside(tmp_path)
    where = {".csv": "export.csv:2: column 'PDF'",
             ".json": "export.json: record 1: column 'pdf_path'"}[suffix]
    for cell in (str(secret), "invoices/../elsewhere/payroll.pdf", "invoices/link.pdf",
                 "/etc/passwd"):
        path = _export(tmp_path, cell, suffix)
        async with sessions() as session:
            with pytest.raises(LedgerError) as caught:
                await import_invoices(session, path, settings=letters_settings)
        assert str(caught.value) == (
            f"{tmp_path / where}: {cell} is not in the invoices folder "
            f"{tmp_path / 'invoices'} (letters.invoice_pdf_pattern): invoice copies are "
            "read from there only")
    async with sessions() as session:
        assert await session.scalar(select(Invoice).where(Invoice.number == "COD_F2001")) \
            is None
        await import_invoices(session, _export(tmp_path, "invoices/COD_F1026.pdf", suffix),
                              settings=letters_settings)
        await session.commit()
    job = await letter(sessions, letters_settings, "COD_F2001", level=3)
    assert job.copy_paths == (str(tmp_path / "invoices" / "COD_F1026.pdf"),)


async def test_preparation_refuses_a_copy_that_leads_out_of_the_invoices_folder(
        sessions: Sessions, letters_settings: Settings, tmp_path: Path) -> None:
    """A path stored before the import checked it, or a link made since."""
    secret = _outside(tmp_path)
    async with sessions.begin() as session:
        invoice = await session.scalar(select(Invoice).where(Invoice.number == "COD_F1023"))
        assert invoice is not None
        invoice.pdf_path = str(secret)
    with pytest.raises(RenderError, match=r"^invoice COD_F1023: the copy to attach is "
                                          r"refused: .*payroll\.pdf is not in the invoices "
                                          r"folder"):
        await letter(sessions, letters_settings, "COD_F1023")
    copy = tmp_path / "invoices" / "COD_F1026.pdf"
    copy.unlink()
    copy.symlink_to(secret)  # the pattern's own path, now a link out of the folder
    with pytest.raises(RenderError, match=r"^invoice COD_F1026: the copy to attach is "
                                          r"refused: .*COD_F1026\.pdf is not in the invoices"):
        await letter(sessions, letters_settings, "COD_F1026")
