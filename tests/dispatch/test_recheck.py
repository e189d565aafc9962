"""Dispatch reads the invoice again just before the channel sends: a payment
recorded while a reminder waits for its channel cancels it, never sends it.

A channel plugin (the public contract, as a third party writes one) holds
its first delivery until the test has paid the other invoice, whose
reminder is then rendered and waiting for the channel.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select

from relances.daemon.dispatch import outbox
from relances.daemon.dispatch.run import Dispatcher
from relances.daemon.ledger import book
from relances.daemon.ledger.imports import import_invoices
from relances.daemon.letters.documents import LetterJob
from relances.daemon.letters.pool import RenderedLetter, Renderer
from relances.daemon.models import HistoryEntry, Reminder
from relances.daemon.storage import App
from relances.plugins import Channel, Delivery, Receipt, hookimpl
from relances.plugins.manager import get_plugin_manager

AS_OF = dt.date(2024, 6, 1)
ROW = ("ACME\tACME\tACME SARL\t\t01/12/2023\t{number}\tPC\tPC\t100,00\t100,00\t01/01/2024\t"
       "Virement\t1\t\t(i)\t\t1")


class Gate(Channel):
    """Takes deliveries one at a time; holds the first until told to go on."""

    name = label = "gate"

    def __init__(self) -> None:
        self.first = asyncio.Event()
        self.go = asyncio.Event()
        self.sent: list[tuple[str, ...]] = []

    async def send(self, delivery: Delivery) -> Receipt:
        if not self.sent:
            self.sent.append(delivery.invoice_numbers)
            self.first.set()
            await self.go.wait()
        else:
            self.sent.append(delivery.invoice_numbers)
        return Receipt("gate", f"gate-{len(self.sent)}")


class CountingRenderer(Renderer):
    """The real render pool, counting what it has rendered."""

    rendered = 0

    async def render(self, job: LetterJob) -> RenderedLetter:
        letter = await super().render(job)
        self.rendered += 1
        return letter


async def _until(condition: Callable[[], bool], seconds: float = 60) -> None:
    for _ in range(int(seconds * 20)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


async def test_a_payment_while_the_reminder_waits_for_its_channel_cancels_it(
        app: App, tsv: Callable[..., Path]) -> None:
    gate = Gate()

    class GatePlugin:
        @hookimpl
        def relances_register_channels(self, register: Any) -> None:
            register("gate", lambda settings: gate)

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(GatePlugin(), name="gate")
    default = app.settings.policies["default"]
    level1 = default.levels[1].model_copy(update={"channels": ("gate",)})
    app.settings = app.settings.model_copy(update={
        "channels": {"gate": {}},
        "policies": {"default": default.model_copy(update={"levels": {**default.levels, 1: level1}})},
    })
    async with app.sessions.begin() as session:
        await import_invoices(session, tsv(ROW.format(number="F1"), ROW.format(number="F2")),
                              settings=app.settings)
        queued = await outbox.queue(session, app.settings, outbox.Request(as_of=AS_OF),
                                    user="tester")
    assert len(queued.ids) == 2

    async with CountingRenderer(app.settings, workers=1) as renderer:
        dispatcher = Dispatcher(app, pm, renderer)
        run = asyncio.create_task(dispatcher.run(only=queued.ids))
        await asyncio.wait_for(gate.first.wait(), 60)
        await _until(lambda: renderer.rendered == 2)  # the other one waits for the channel
        other = "F2" if gate.sent[0] == ("F1",) else "F1"
        async with app.sessions.begin() as session:
            invoice = await book.invoice_by_number(session, other)
            await book.record_payment(session, invoice, amount=Decimal("100"), paid_on=AS_OF,
                                      user="tester")
        gate.go.set()
        summary = await asyncio.wait_for(run, 60)

    assert gate.sent == [("F2",) if other == "F1" else ("F1",)]  # the paid one never left
    assert (sum(summary.sent.values()), summary.cancelled) == (1, 1)
    async with app.sessions() as session:
        states = dict((await session.execute(
            select(Reminder.invoice_numbers, Reminder.state))).all())
        invoice = await book.invoice_by_number(session, other)
        actions = (await session.execute(select(HistoryEntry.action).where(
            HistoryEntry.invoice_id == invoice.id))).scalars().all()
    assert states[other] == "cancelled"
    assert "Relance niveau 1 annulée : the invoice has been paid" in actions
    assert invoice.last_reminded_on is None  # nothing stamped
