"""Escalation: the seed's "Incrémentation de relances", one level at a time."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

from helpers import Cli, write_settings
from sqlalchemy import select

from relances.daemon.escalation.run import escalate
from relances.daemon.ledger.book import invoice_history
from relances.daemon.ledger.imports import import_invoices
from relances.daemon.models import Customer, Invoice
from relances.daemon.storage import App

ROW = "{code}\t\t{code} SARL\t\t01/01/2024\t{number}\t\t\t{amount}\t{amount}\t{due}\t\t\t{sent}\t\t\t{level}"


def row(number: str, *, code: str = "C1", due: str = "01/02/2024", amount: str = "100,00",
        sent: str = "", level: str = "") -> str:
    return ROW.format(code=code, number=number, due=due, amount=amount, sent=sent, level=level)


async def levels(app: App) -> dict[str, int]:
    async with app.sessions() as session:
        result = await session.execute(select(Invoice.number, Invoice.level))
        return dict(result.all())


async def load(app: App, path: Path) -> None:
    async with app.sessions.begin() as session:
        await import_invoices(session, path)


async def run(app: App, on: str, **kwargs: object) -> dict[int, int]:
    async with app.sessions.begin() as session:
        result = await escalate(session, app.settings, as_of=dt.date.fromisoformat(on),
                                user="tester", **kwargs)  # type: ignore[arg-type]
    return result.moved


def test_seed_escalating_int01_alone(seeded: Cli) -> None:
    out = seeded("escalate --customer INT01 --as-of 22/11/2024").stdout
    assert "1 invoices escalated (1 to level 1, 0 to level 2, 0 to level 3)" in out
    listed = json.loads(seeded("list --format json --as-of 22/11/2024").stdout)
    assert {r["invoice_number"]: r["level"] for r in listed} == {"COD_F1023": 0, "COD_F1026": 1}
    # Escalation never stamps "Relancé le": only a sent reminder does.
    assert {r["invoice_number"]: r["last_reminded_on"] for r in listed}["COD_F1026"] == "2024-11-19"
    history = seeded("history COD_F1026").stdout
    assert "Passage au niveau 1 (incrémentation)" in history and "tester" in history
    assert "(aucune étape)" in seeded("history COD_F1023").stdout


def test_second_run_on_the_same_day_changes_nothing(seeded: Cli) -> None:
    assert "2 invoices escalated" in seeded("escalate --as-of 22/11/2024").stdout
    assert "0 invoices escalated" in seeded("escalate --as-of 22/11/2024").stdout
    # Not even later: level 1 was never sent, so the invoice cannot climb to 2.
    assert "0 invoices escalated" in seeded("escalate --as-of 22/11/2025").stdout


async def test_level_zero_clock_starts_at_the_due_date(app: App, tsv: Callable[..., Path]) -> None:
    await load(app, tsv(row("F-45", due="01/02/2024"), row("F-46", due="31/01/2024")))
    # 45 days after 01/02/2024 is 17/03/2024: "more than 45 days" means the 18th.
    assert (await run(app, "2024-03-17"))[1] == 1
    assert await levels(app) == {"F-45": 0, "F-46": 1}
    assert (await run(app, "2024-03-18"))[1] == 1
    assert await levels(app) == {"F-45": 1, "F-46": 1}


async def test_next_level_needs_the_previous_letter_sent(app: App, tsv: Callable[..., Path]) -> None:
    await load(app, tsv(
        row("SENT1", sent="01/03/2024", level="1"),
        row("SENT2", sent="01/03/2024", level="2"),
        row("SENT3", sent="01/03/2024", level="3"),
        row("UNSENT", level="1"),
    ))
    assert await run(app, "2024-04-15") == {1: 0, 2: 0, 3: 0}
    assert await run(app, "2024-04-16") == {1: 0, 2: 1, 3: 1}
    assert await levels(app) == {"SENT1": 2, "SENT2": 3, "SENT3": 3, "UNSENT": 1}
    assert await run(app, "2025-01-01") == {1: 0, 2: 0, 3: 0}


async def test_ineligible_invoices_stay_put(app: App, tsv: Callable[..., Path]) -> None:
    await load(app, tsv(row("HELD"), row("HELD_ENDED"), row("SMALL", amount="4,99"),
                        row("OPTOUT", code="C2"), row("PAID", code="C3", amount="0,00"),
                        row("NOTDUE", due="01/06/2030")))
    async with app.sessions.begin() as session:
        invoices = {i.number: i for i in (await session.execute(select(Invoice))).scalars()}
        invoices["HELD"].on_hold, invoices["HELD"].hold_reason = True, "litige qualité"
        invoices["HELD_ENDED"].on_hold, invoices["HELD_ENDED"].hold_until = True, dt.date(2024, 5, 1)
        customer = await session.scalar(select(Customer).where(Customer.code == "C2"))
        assert customer is not None
        customer.opted_out = True
    app.settings = app.settings.model_copy(update={"policies": {
        "default": app.settings.policies["default"].model_copy(
            update={"minimum_amount": 5})}})
    await run(app, "2024-06-01")
    assert await levels(app) == {"HELD": 0, "HELD_ENDED": 1, "SMALL": 0, "OPTOUT": 0,
                                 "PAID": 0, "NOTDUE": 0}


async def test_days_override_and_customer_filter(app: App, tsv: Callable[..., Path]) -> None:
    await load(app, tsv(row("A1", code="A"), row("B1", code="B")))
    assert (await run(app, "2024-02-11", days=9, customer="A"))[1] == 1
    assert await levels(app) == {"A1": 1, "B1": 0}


async def test_one_history_entry_per_change(app: App, tsv: Callable[..., Path]) -> None:
    await load(app, tsv(*(row(f"F-{n}") for n in range(30))))
    await run(app, "2024-06-01")
    async with app.sessions() as session:
        invoices = (await session.execute(select(Invoice))).scalars().all()
        histories = [await invoice_history(session, i.id) for i in invoices]
    assert len(invoices) == 30
    assert all(len(steps) == 1 for steps in histories)
    assert {(s.event, s.level, s.user, s.action) for steps in histories for s in steps} == {
        ("escalated", 1, "tester", "Passage au niveau 1 (incrémentation)")}


def test_customer_policy_uses_its_own_delays(tmp_path: Path, database_url: str,
                                                   tsv: Callable[..., Path]) -> None:
    fast = {"levels": {n: {"delay_days": 10, "channels": ["archive"]} for n in (1, 2, 3)}}
    path = write_settings(tmp_path / "settings.yaml",
                          {"database.url": database_url, "policies.fast": fast})
    cli = Cli(path)
    cli("init")
    cli(["import", "invoices", str(tsv(row("SLOW", code="S"), row("QUICK", code="Q")))])
    customers = tmp_path / "customers.csv"
    customers.write_text("code,policy\nQ,fast\n", encoding="utf-8")
    cli(["import", "customers", str(customers)])
    cli("escalate --as-of 2024-02-20")
    listed = json.loads(cli("list --format json --as-of 2024-02-20").stdout)
    assert {r["invoice_number"]: r["level"] for r in listed} == {"SLOW": 0, "QUICK": 1}


def test_dry_run_writes_nothing(seeded: Cli) -> None:
    out = seeded("escalate --dry-run --as-of 22/11/2024").stdout
    assert "COD_F1023 (DAN01): 0 → 1" in out and "COD_F1026 (INT01): 0 → 1" in out
    assert "dry run: 2 invoices would be escalated; nothing written" in out
    listed = json.loads(seeded("list --format json --as-of 22/11/2024").stdout)
    assert [r["level"] for r in listed] == [0, 0]
    assert "(aucune étape)" in seeded("history COD_F1026").stdout


def test_unknown_customer_is_an_error(seeded: Cli) -> None:
    result = seeded("escalate --customer NOPE", ok=False)
    assert result.exit_code == 1
    assert "no customer with code 'NOPE'" in result.stderr


def test_level_set_by_hand_is_kept_in_history_and_sent(seeded: Cli) -> None:
    assert "COD_F1023: level 0 → 2" in seeded("set-level COD_F1023 2").stdout
    assert "already at level 2" in seeded("set-level COD_F1023 2").stdout
    assert "Niveau modifié à la main : 0 → 2" in seeded("history COD_F1023").stdout
    listed = json.loads(seeded("list --format json --customer DAN01 --as-of 22/11/2024").stdout)
    assert (listed[0]["level"], listed[0]["to_send"]) == (2, "auto")
    assert seeded("set-level COD_F1023 4", ok=False).exit_code == 2
