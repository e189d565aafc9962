"""Bank entries into the ledger: each matching rule, nothing applied twice, the review queue.

The statements are built as the readers hand them over (``Statement`` of
``Entry``), on SQLite and PostgreSQL; the readers of each file format have
their own tests, and ``tests/cli/test_bank.py`` drives whole files.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from relances.daemon.bank.apply import import_statement
from relances.daemon.bank.review import ignore, match_by_hand, waiting
from relances.daemon.bank.statements import Entry, Statement, with_identities
from relances.daemon.errors import BankError
from relances.daemon.ledger import book
from relances.daemon.ledger.due import due_letters
from relances.daemon.ledger.imports import import_invoices
from relances.daemon.ledger.references import invoice_reference
from relances.daemon.models import BankEntry, Customer, CustomerIban, HistoryEntry, Payment
from relances.daemon.storage import App

ON = dt.date(2026, 11, 30)
IBAN = "FR7630006000011234567890189"
OTHER_IBAN = "DE89370400440532013000"
ROW = ("{code}\t{code}\t{name}\t\t01/09/2026\t{number}\tPC\tPC\t{amount}\t{amount}\t{due}\t"
       "Virement\t1\t\t(i)\t\t1")


def invoice_row(number: str, amount: str, *, code: str = "SGE", due: str = "01/10/2026",
                name: str = "SOCIETE GENERALE ETIENNE") -> str:
    return ROW.format(code=code, name=name, number=number, amount=amount, due=due)


def entry(amount: str, *, text: str = "", reference: str | None = None, iban: str | None = None,
          on: dt.date = ON, identity: str = "") -> Entry:
    return Entry(identity=identity, booked_on=on, amount=Decimal(amount), position=0,
                 where="test", counterparty="SOCIETE GENERALE ETIENNE", counterparty_iban=iban,
                 reference=reference, text=text)


def statement(*entries: Entry, name: str = "releve.xml") -> Statement:
    return Statement(name, "camt.053.001.08", "FR7630004000031234567890143", "STMT-1", ON,
                     with_identities("FR7630004000031234567890143", list(entries)))


@pytest.fixture
async def ledger(app: App, tsv: Callable[..., Path]) -> App:
    rows = [invoice_row("FA-2024-008", "2 400,00", due="01/09/2026"),
            invoice_row("FA-2024-009", "120,50", due="15/09/2026"),
            invoice_row("FA-2024-010", "600,00", due="01/10/2026"),
            invoice_row("2932", "99,00", code="TRX", name="TRANSPORTS ROUX")]
    async with app.sessions.begin() as session:
        await import_invoices(session, tsv(*rows), settings=app.settings)
    return app


async def apply(app: App, *entries: Entry, name: str = "releve.xml") -> str:
    async with app.sessions.begin() as session:
        return str(await import_statement(session, app.settings, statement(*entries, name=name),
                                          user="tester", as_of=ON))


async def remaining(app: App) -> dict[str, Decimal]:
    async with app.sessions() as session:
        return {n: (await book.invoice_by_number(session, n)).remaining
                for n in ("FA-2024-008", "FA-2024-009", "FA-2024-010", "2932")}


async def invoice_id(app: App, number: str) -> int:
    async with app.sessions() as session:
        return (await book.invoice_by_number(session, number)).id


async def states(app: App) -> list[tuple[str, str | None]]:
    async with app.sessions() as session:
        return list((await session.execute(select(BankEntry.state, BankEntry.rule)
                                           .order_by(BankEntry.id))).all())


async def test_a_creditor_reference_pays_its_invoice(ledger: App) -> None:
    reference = invoice_reference("FA-2024-010", await invoice_id(ledger, "FA-2024-010"))
    summary = await apply(ledger, entry("600.00", reference=reference))
    assert summary == ("1 entries: 1 new, 0 already read; 1 matched, 0 already recorded, "
                       "0 to review, 0 ignored (debits)")
    assert (await remaining(ledger))["FA-2024-010"] == 0
    async with ledger.sessions() as session:
        invoice = await book.invoice_by_number(session, "FA-2024-010")
        actions = (await session.execute(select(HistoryEntry.action).where(
            HistoryEntry.invoice_id == invoice.id))).scalars().all()
        method = (await session.execute(select(Payment.method))).scalar_one()
    assert (f"Règlement 600,00 € — virement du 30/11/2026, réf. {reference}, "
            "SOCIETE GENERALE ETIENNE (soldée)") in actions
    assert method == "virement"
    assert await states(ledger) == [("matched", "reference")]


async def test_a_reference_inside_the_free_text_with_spaces(ledger: App) -> None:
    reference = invoice_reference("FA-2024-009", await invoice_id(ledger, "FA-2024-009"))
    spaced = " ".join(reference[i:i + 4] for i in range(0, len(reference), 4))
    await apply(ledger, entry("120.50", text=f"VIR SEPA RECU /DE SGE /MOTIF {spaced}"))
    assert (await remaining(ledger))["FA-2024-009"] == 0


async def test_invoice_numbers_in_the_text_split_oldest_first(ledger: App) -> None:
    await apply(ledger, entry("2450.00", text="Reglement factures fa 2024 010 et FA-2024-008"))
    left = await remaining(ledger)
    assert (left["FA-2024-008"], left["FA-2024-010"]) == (0, Decimal("550.00"))
    assert await states(ledger) == [("matched", "number")]


async def test_a_number_inside_a_siret_or_a_date_settles_nothing(ledger: App) -> None:
    await apply(ledger, entry("99.00", text="SIRET 73282932000074 DU 29/32/2026"))
    assert (await remaining(ledger))["2932"] == Decimal("99.00")
    assert await states(ledger) == [("review", None)]


async def test_more_than_what_it_names_waits(ledger: App) -> None:
    await apply(ledger, entry("700.00", text="FACTURE FA-2024-010"))
    assert (await remaining(ledger))["FA-2024-010"] == Decimal("600.00")
    async with ledger.sessions() as session:
        [item] = await waiting(session)
    assert item.entry.note == "700.00 € is more than the 600.00 € still due on FA-2024-010"
    assert item.customers == ["SGE"]


async def test_a_known_payer_with_one_invoice_of_that_amount(ledger: App) -> None:
    async with ledger.sessions.begin() as session:
        customer = await book.customer_by_code(session, "SGE")
        session.add(CustomerIban(customer_id=customer.id, iban=IBAN, source="import"))
    await apply(ledger, entry("120.50", iban=IBAN, text="VIREMENT"),
                entry("3000.00", iban=IBAN, text="SOLDE", identity="whole"))
    left = await remaining(ledger)
    assert left["FA-2024-009"] == 0  # exactly one invoice of 120,50
    assert (left["FA-2024-008"], left["FA-2024-010"]) == (0, 0)  # then the whole balance
    assert await states(ledger) == [("matched", "iban"), ("matched", "iban")]


async def test_an_amount_that_fits_nothing_holds_the_customer(ledger: App) -> None:
    async with ledger.sessions.begin() as session:
        customer = await book.customer_by_code(session, "SGE")
        session.add(CustomerIban(customer_id=customer.id, iban=IBAN, source="import"))
    await apply(ledger, entry("50.00", iban=IBAN))
    async with ledger.sessions() as session:
        due = (await session.execute(due_letters(ledger.settings,
                                                 as_of=dt.date(2026, 12, 5)))).all()
        customer = await book.customer_by_code(session, "SGE")
    assert {row.number for row in due} == {"2932"}  # SGE waits: that payment may be theirs
    assert customer.review_until == ON + dt.timedelta(days=10)
    async with ledger.sessions.begin() as session:
        [item] = await waiting(session)
        await ignore(session, item.entry.id, reason="remboursement d'un trop-perçu", user="tester")
    async with ledger.sessions() as session:
        due = (await session.execute(due_letters(ledger.settings,
                                                 as_of=dt.date(2026, 12, 5)))).all()
    assert {row.number for row in due} == {"2932", "FA-2024-008", "FA-2024-009", "FA-2024-010"}


async def test_the_same_statement_twice_applies_nothing_twice(ledger: App) -> None:
    entries = (entry("120.50", text="FA-2024-009"), entry("100.00", text="FA-2024-010"),
               entry("100.00", text="FA-2024-010"))  # two equal transfers: two payments
    await apply(ledger, *entries)
    again = await apply(ledger, *entries, name="releve-bis.xml")
    assert again.startswith("3 entries: 0 new, 3 already read; 0 matched")
    assert (await remaining(ledger))["FA-2024-010"] == Decimal("400.00")


async def test_a_payment_typed_in_by_hand_is_linked_not_counted_twice(ledger: App) -> None:
    async with ledger.sessions.begin() as session:
        invoice = await book.invoice_by_number(session, "FA-2024-010")
        await book.record_payment(session, invoice, amount=Decimal("600.00"),
                                  paid_on=dt.date(2026, 11, 26), user="alice", method="chèque")
    summary = await apply(ledger, entry("600.00", text="FA-2024-010"))
    assert "0 matched, 1 already recorded" in summary
    async with ledger.sessions() as session:
        payments = (await session.execute(select(Payment.bank_entry_id))).scalars().all()
    assert len(payments) == 1 and payments[0] is not None
    assert (await remaining(ledger))["FA-2024-010"] == 0


async def test_debits_are_ignored(ledger: App) -> None:
    summary = await apply(ledger, entry("-12.00", text="FRAIS TENUE DE COMPTE"))
    assert summary.endswith("0 to review, 1 ignored (debits)")


async def test_matching_by_hand_remembers_the_payer_and_keeps_a_credit(ledger: App) -> None:
    await apply(ledger, entry("650.00", iban=OTHER_IBAN, text="MERCI"))
    async with ledger.sessions.begin() as session:
        [item] = await waiting(session)
        done = await match_by_hand(session, ledger.settings, item.entry.id,
                                   [("FA-2024-010", None)], user="tester")
    assert done == ["FA-2024-010: 600.00 € recorded", "SGE: 50.00 € kept as a credit",
                    f"{OTHER_IBAN} remembered: their next payment matches alone"]
    async with ledger.sessions() as session:
        customer = await book.customer_by_code(session, "SGE")
        assert customer.credit == Decimal("50.00")
    # The next payment from that account matches alone.
    await apply(ledger, entry("120.50", iban=OTHER_IBAN, identity="next"))
    assert (await remaining(ledger))["FA-2024-009"] == 0


async def test_review_actions_refuse_what_does_not_apply(ledger: App) -> None:
    await apply(ledger, entry("10.00"))
    async with ledger.sessions.begin() as session:
        [item] = await waiting(session)
        with pytest.raises(BankError, match="more than the 10.00 € left"):
            await match_by_hand(session, ledger.settings, item.entry.id,
                                [("FA-2024-010", Decimal("20.00"))], user="tester")
        with pytest.raises(BankError, match="no bank entry 999"):
            await ignore(session, 999, reason="x", user="tester")
        await ignore(session, item.entry.id, reason="virement interne", user="tester")
        with pytest.raises(BankError, match="is not waiting for review"):
            await ignore(session, item.entry.id, reason="again", user="tester")
    async with ledger.sessions() as session:
        customer = await session.scalar(select(Customer).where(Customer.code == "TRX"))
        assert customer is not None and customer.review_until is None


async def test_a_queued_reminder_is_not_sent_once_a_statement_paying_it_is_read(
        ledger: App, tmp_path: Path) -> None:
    from relances.daemon.dispatch import outbox
    from relances.daemon.dispatch.run import Dispatcher
    from relances.daemon.letters.pool import Renderer
    from relances.daemon.models import Reminder

    async with ledger.sessions.begin() as session:
        queued = await outbox.queue(session, ledger.settings,
                                    outbox.Request(as_of=dt.date(2026, 12, 2)), user="tester")
    assert len(queued.ids) == 4
    await apply(ledger, entry("600.00", text="FA-2024-010"))
    async with Renderer(ledger.settings, workers=1) as renderer:
        summary = await Dispatcher(ledger, ledger.plugins, renderer).run(only=queued.ids)
    assert (sum(summary.sent.values()), summary.cancelled) == (3, 1)
    async with ledger.sessions() as session:
        state = (await session.execute(select(Reminder.state).where(
            Reminder.invoice_numbers == "FA-2024-010"))).scalar_one()
    assert state == "cancelled"
    letters = [p.name for p in (tmp_path / "data" / "letters").iterdir()]
    assert len(letters) == 3 and not any("FA-2024-010" in name for name in letters)
