"""E-invoicing statuses (CDAR) into the ledger: each status's effect, read once, refused whole.

The messages are written here from the element paths of the French
specification (the FNFE-MPE's BR-FR-CDV rules for UN/CEFACT D22B
CrossDomainAcknowledgementAndResponse), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from cdar_samples import SELLER, message, reference
from sqlalchemy import func, select

from relances.daemon.bank.apply import import_statement
from relances.daemon.bank.statements import Entry, Statement, with_identities
from relances.daemon.config import Settings
from relances.daemon.errors import LedgerError
from relances.daemon.ledger import book
from relances.daemon.ledger.cdar import looks_like_cdar, read_cdar
from relances.daemon.ledger.due import remindable
from relances.daemon.ledger.imports import import_cdar, import_invoices
from relances.daemon.ledger.references import invoice_reference
from relances.daemon.ledger.sources import source_of
from relances.daemon.models import BankEntry, HistoryEntry, Invoice, InvoiceStatus, Payment
from relances.daemon.storage import App

ROW = ("SGE\tSGE\tSOCIETE GENERALE ETIENNE\t\t01/09/2026\t{number}\tPC\tPC\t{amount}\t{amount}\t"
       "01/10/2026\tVirement\t1\t\t(i)\t\t1")


@pytest.fixture
def cdar(tmp_path: Path) -> Callable[..., Path]:
    def write(text: str, name: str = "statut.xml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path
    return write


@pytest.fixture
async def ledger(app: App, tsv: Callable[..., Path]) -> App:
    rows = [ROW.format(number="F2026-0102", amount="680,40"),
            ROW.format(number="F2026-0103", amount="1 200,00")]
    async with app.sessions.begin() as session:
        await import_invoices(session, tsv(*rows), settings=app.settings)
    return app


def seller_settings(app: App, siret: str = SELLER + "00015") -> Settings:
    return app.settings.model_copy(update={"sender": app.settings.sender.model_copy(
        update={"siret": siret})})


async def apply(app: App, *paths: Path, settings: Settings | None = None) -> str:
    async with app.sessions.begin() as session:
        return str(await import_cdar(session, list(paths), settings=settings or seller_settings(app),
                                     user="tester"))


async def invoice(app: App, number: str = "F2026-0102") -> Invoice:
    async with app.sessions() as session:
        return await book.invoice_by_number(session, number)


async def history(app: App, number: str = "F2026-0102") -> list[str]:
    async with app.sessions() as session:
        found = await book.invoice_by_number(session, number)
        return list((await session.execute(select(HistoryEntry.action).where(
            HistoryEntry.invoice_id == found.id).order_by(HistoryEntry.id))).scalars())


async def payments(app: App) -> list[tuple[Decimal, str | None, bool, int | None]]:
    async with app.sessions() as session:
        return [tuple(row) for row in (await session.execute(  # type: ignore[misc]
            select(Payment.amount, Payment.method, Payment.reflected, Payment.bank_entry_id)
            .order_by(Payment.id))).all()]


async def remindable_numbers(app: App, as_of: dt.date) -> list[str]:
    async with app.sessions() as session:
        return sorted((await session.execute(select(Invoice.number).where(
            remindable(as_of)))).scalars())


async def test_212_from_the_seller_settles_the_invoice_once(ledger: App, cdar: Callable[..., Path]) -> None:
    path = cdar(message(reference("F2026-0102", "212", cashed="680.40")))
    summary = await apply(ledger, path)
    assert summary.startswith("1 statuses: 1 applied, 0 kept for the record, 0 already read")
    assert (await invoice(ledger)).remaining == 0
    assert await payments(ledger) == [(Decimal("680.40"), "plateforme", True, None)]
    assert ("Règlement 680,40 € — encaissement du 30/11/2026 selon la plateforme (212, "
            "message CDV-0001) (soldée)") in await history(ledger)
    again = await apply(ledger, path)
    assert again.startswith("1 statuses: 0 applied, 0 kept for the record, 1 already read")
    assert len(await payments(ledger)) == 1


async def test_a_partial_212_lowers_what_remains(ledger: App, cdar: Callable[..., Path]) -> None:
    await apply(ledger, cdar(message(reference("F2026-0103", "212", cashed="200.00"))))
    assert (await invoice(ledger, "F2026-0103")).remaining == Decimal("1000.00")


def credit(amount: str, text: str) -> Statement:
    account = "FR7630004000031234567890143"
    entry = Entry(identity="", booked_on=dt.date(2026, 11, 30), amount=Decimal(amount), position=0,
                  where="test", counterparty="SOCIETE GENERALE ETIENNE", counterparty_iban=None,
                  reference=None, text=text)
    return Statement("releve.xml", "camt.053.001.08", account, "STMT-1", dt.date(2026, 11, 30),
                     with_identities(account, [entry]))


async def test_the_bank_first_then_212_pays_nothing_twice(ledger: App, cdar: Callable[..., Path]) -> None:
    async with ledger.sessions.begin() as session:
        await import_statement(session, ledger.settings, credit("680.40", "VIR F2026-0102"),
                               user="tester")
    summary = await apply(ledger, cdar(message(reference("F2026-0102", "212", cashed="680.40"))))
    assert summary.startswith("1 statuses: 1 applied")
    assert [p[1] for p in await payments(ledger)] == ["virement"]
    assert (await history(ledger))[-1] == ("Plateforme 212 Encaissée, message CDV-0001 : "
                                           "déjà soldée, rien de plus")


async def test_212_first_then_the_bank_entry_links_to_it(ledger: App, cdar: Callable[..., Path]) -> None:
    await apply(ledger, cdar(message(reference("F2026-0102", "212", cashed="680.40"))))
    rf = invoice_reference("F2026-0102", (await invoice(ledger)).id)
    async with ledger.sessions.begin() as session:
        summary = await import_statement(session, ledger.settings, credit("680.40", f"VIR {rf}"),
                                         user="tester")
    assert summary.known == 1 and summary.matched == 0 and summary.review == 0
    [(amount, method, _, entry_id)] = await payments(ledger)
    assert (amount, method) == (Decimal("680.40"), "plateforme") and entry_id is not None
    async with ledger.sessions() as session:
        assert (await session.execute(select(BankEntry.state))).scalar_one() == "known"


async def test_212_from_the_buyer_is_left_out(ledger: App, cdar: Callable[..., Path]) -> None:
    summary = await apply(ledger, cdar(message(reference("F2026-0102", "212"), role="BY")))
    assert summary.endswith("1 left out")
    assert (await invoice(ledger)).remaining == Decimal("680.40")
    assert await payments(ledger) == []


@pytest.mark.parametrize(("code", "label", "reason"), [
    ("207", "En litige", "MONTANTTOTAL_ERR"), ("208", "Suspendue", "JUSTIF_ABS"),
    ("210", "Refusée", "DOUBLON"), ("213", "Rejetée", "REJ_SEMAN")])
async def test_a_dispute_holds_the_invoice_with_its_reason(
        ledger: App, cdar: Callable[..., Path], code: str, label: str, reason: str) -> None:
    await apply(ledger, cdar(message(reference("F2026-0102", code, reason=reason,
                                               text="Montant <faux> & à revoir"))))
    held = await invoice(ledger)
    assert held.on_hold and held.hold_until is None
    said = f"Plateforme {code} {label} : {reason} — Montant <faux> & à revoir"
    assert held.hold_reason == said
    assert (await history(ledger))[-1] == f"Mise en attente : {said}"
    assert await remindable_numbers(ledger, dt.date(2026, 12, 10)) == ["F2026-0103"]


async def test_an_approval_ends_a_platform_hold_not_a_persons(ledger: App, cdar: Callable[..., Path]) -> None:
    await apply(ledger, cdar(message(reference("F2026-0102", "207", reason="CMD_ERR")), "a.xml"))
    async with ledger.sessions.begin() as session:
        await book.set_hold(session, await book.invoice_by_number(session, "F2026-0103"),
                            user="alice", reason="appel du client")
    await apply(ledger, cdar(message(reference("F2026-0102", "205"), reference("F2026-0103", "205"),
                                     ident="CDV-0002", issued="20261202090000"), "b.xml"))
    assert not (await invoice(ledger)).on_hold
    assert (await history(ledger))[-1] == "Fin de l'attente : Plateforme 205 Approuvée"
    assert (await invoice(ledger, "F2026-0103")).hold_reason == "appel du client"


async def test_211_pauses_reminders_for_the_days_set(ledger: App, cdar: Callable[..., Path]) -> None:
    summary = await apply(ledger, cdar(message(reference("F2026-0102", "211"))))
    assert summary.startswith("1 statuses: 1 applied")
    held = await invoice(ledger)
    assert held.hold_until == dt.date(2026, 12, 15)  # 30/11 + imports.cdar.payment_sent_days
    assert "pas de relance jusqu'au 15/12/2026" in (await history(ledger))[-1]
    assert await remindable_numbers(ledger, dt.date(2026, 12, 15)) == ["F2026-0103"]
    assert await remindable_numbers(ledger, dt.date(2026, 12, 16)) == ["F2026-0102", "F2026-0103"]


async def test_informative_statuses_are_kept_and_change_nothing(ledger: App,
                                                               cdar: Callable[..., Path]) -> None:
    summary = await apply(ledger, cdar(message(reference("F2026-0102", "204"))))
    assert summary.startswith("1 statuses: 0 applied, 1 kept for the record")
    async with ledger.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(InvoiceStatus)) == 1


async def test_an_unknown_invoice_is_listed_then_applied_once_known(
        ledger: App, cdar: Callable[..., Path], tsv: Callable[..., Path]) -> None:
    path = cdar(message(reference("F2026-0999", "207", reason="AUTRE")))
    assert "1 for invoices not in the ledger" in await apply(ledger, path)
    async with ledger.sessions.begin() as session:
        await import_invoices(session, tsv(ROW.format(number="F2026-0999", amount="10,00"),
                                           name="more.tsv"), settings=ledger.settings)
    assert (await apply(ledger, path)).startswith("1 statuses: 1 applied")
    assert (await invoice(ledger, "F2026-0999")).on_hold


async def test_another_sellers_invoice_refuses_the_whole_import(
        ledger: App, cdar: Callable[..., Path]) -> None:
    good = cdar(message(reference("F2026-0102", "207", reason="AUTRE")), "good.xml")
    other = cdar(message(reference("F2026-0103", "207", reason="AUTRE", siren="552120222"),
                         ident="CDV-9"), "other.xml")
    with pytest.raises(LedgerError, match=r"^other\.xml: line \d+: invoice F2026-0103 is of the "
                                          r"seller with SIREN 552120222, not 732829320"):
        await apply(ledger, good, other)
    assert not (await invoice(ledger)).on_hold


async def test_a_bad_file_among_several_writes_nothing(ledger: App, cdar: Callable[..., Path]) -> None:
    good = cdar(message(reference("F2026-0102", "207", reason="AUTRE")), "good.xml")
    bad = cdar(message(reference("F2026-0103", "299")), "bad.xml")
    with pytest.raises(LedgerError, match=r"bad\.xml: line \d+: ram:ProcessConditionCode: '299'"):
        await apply(ledger, good, bad)
    assert not (await invoice(ledger)).on_hold


def test_a_cdar_is_recognised_by_its_root(cdar: Callable[..., Path]) -> None:
    path = cdar(message(reference("F2026-0102", "212")), "STATUT.XML")
    assert looks_like_cdar(path.read_bytes()) and source_of(path) == "cdar"
    [status] = read_cdar(path)
    assert (status.code, status.invoice_number, status.seller_siren, status.issuer_role) == \
        ("212", "F2026-0102", SELLER, "SE")
    assert status.issued_at == dt.datetime(2026, 11, 30, 14, 30, tzinfo=dt.UTC)


@pytest.mark.parametrize(("fmt", "value", "expected"), [
    ("102", "20261130", dt.datetime(2026, 11, 30, tzinfo=dt.UTC)),
    ("203", "202611301430", dt.datetime(2026, 11, 30, 14, 30, tzinfo=dt.UTC)),
    ("205", "202611301430+0100", dt.datetime(2026, 11, 30, 13, 30, tzinfo=dt.UTC))])
def test_the_date_formats_of_the_specification(cdar: Callable[..., Path], fmt: str, value: str,
                                                expected: dt.datetime) -> None:
    [status] = read_cdar(cdar(message(reference("F1", "204"), issued=value, fmt=fmt)))
    assert status.issued_at == expected


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<rsm:CrossDomainAcknowledgementAndResponse
 xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossDomainAcknowledgementAndResponse:100">&lol2;
</rsm:CrossDomainAcknowledgementAndResponse>"""


@pytest.mark.parametrize(("text", "problem"), [
    (BILLION_LAUGHS, "the XML declares a DTD (<!DOCTYPE>), which no CDAR message needs"),
    ('<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"/>',
     "line 1: the XML's root is <Document> in namespace urn:iso:std:iso:20022:tech:xsd:camt.053.001.08, "
     "not a CDAR status message"),
    (message(reference("F1", "212")).replace("<rsm:ExchangedDocument>", "<rsm:ExchangedDocument>x")
     .replace("</rsm:ExchangedDocument>", ""), "not well-formed XML"),
    (message(reference("F1", "212")).replace("<ram:ID>CDV-0001</ram:ID>", ""),
     "ram:ID: missing: the message id is required"),
    (message(reference("", "212")), "ram:IssuerAssignedID: missing: the invoice number is required"),
    (message(reference("F1", "212")).replace("<ram:ProcessConditionCode>212</ram:ProcessConditionCode>", ""),
     "ram:ProcessConditionCode: missing: the status code is required"),
    (message(reference("F1", "212"), issued="20261131120000"),
     "ram:IssueDateTime/udt:DateTimeString: '20261131120000' is not a date of format '204'"),
    (message(reference("F1", "212", cashed="680,40")),
     "ram:ValueAmount: '680,40' is not an amount"),
    (message(), "rsm:AcknowledgementDocument/ram:ReferenceReferencedDocument: missing"),
])
def test_a_file_that_does_not_fit_is_refused_with_where(cdar: Callable[..., Path], text: str,
                                                        problem: str) -> None:
    path = cdar(text)
    with pytest.raises(LedgerError) as refused:
        read_cdar(path)
    assert str(refused.value).startswith(f"{path}: ")
    assert problem in str(refused.value)
    assert "\n" not in str(refused.value)
