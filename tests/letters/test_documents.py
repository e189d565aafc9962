"""Which document goes to whom: prepare_letter, prepare_statement, the context."""

from __future__ import annotations

import datetime as dt
import logging
import pickle
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from letters_fixtures import AS_OF, letters_settings_fixture, make_settings, sessions_fixture  # noqa: F401
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from relances.daemon.config import Settings
from relances.daemon.errors import LedgerError, RenderError
from relances.daemon.letters.documents import LetterJob, prepare_letter, prepare_statement
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
    assert ctx["totals"]["interest"] == Decimal("65.23")
    assert ctx["totals"]["indemnity"] == Decimal("40.00")
    assert ctx["totals"]["amount_due"] == Decimal("785.63")
    assert ctx["deadline"] == AS_OF + dt.timedelta(days=8)
    assert ctx["place"] == "Lyon" and ctx["today"] == AS_OF
    # The render pool gets it by pickling: plain data only.
    assert pickle.loads(pickle.dumps(job)) == job


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
