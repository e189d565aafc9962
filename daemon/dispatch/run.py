"""Dispatch: claim due reminders, render them, send them, stamp them.

Rendering runs in the worker processes of :class:`Renderer`; several
reminders are in flight at once so that the workers are never idle while
a channel talks to its server.  Each outcome is written in its own short
transaction: sent (document kept, invoices stamped, history), retry later
(backoff stored in the row), fall back to the level's next channel, or
failed.  Nothing is stamped unless a channel accepted the document; one
that takes it and confirms later (print, fax) leaves it awaiting its
confirmation, which each run first asks for (:mod:`.confirm`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import socket
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from relances.daemon.dispatch import outbox, records
from relances.daemon.dispatch.channels import Channels, delivery_for, worker_name
from relances.daemon.dispatch.confirm import confirm_due
from relances.daemon.dispatch.leases import Lease, Leases, stale, still_held
from relances.daemon.errors import LedgerError, NothingToSend, RelancesError, RenderError
from relances.daemon.ledger.due import not_remindable
from relances.daemon.letters.documents import LetterJob, prepare_letter, prepare_statement
from relances.daemon.letters.pool import Renderer
from relances.daemon.models import Customer, Invoice, Reminder, RunRecord, utcnow
from relances.daemon.storage import App
from relances.plugins.contract import Delivery, DeliveryError, Receipt
from relances.plugins.manager import notify_delivery_attempted

log = logging.getLogger(__name__)


@dataclass
class Summary:
    """What a dispatch run did, for the command line and the logs."""

    sent: Counter[str] = field(default_factory=Counter)  # by channel
    awaiting: Counter[str] = field(default_factory=Counter)  # taken, to be confirmed, by channel
    confirmed: Counter[str] = field(default_factory=Counter)  # earlier hand-overs now gone
    retrying: int = 0
    failed: int = 0
    cancelled: int = 0
    lost: int = 0  # outcomes not recorded: another worker had taken the reminder over
    reasons: list[str] = field(default_factory=list)

    @property
    def handled(self) -> int:
        return (sum(self.sent.values()) + sum(self.awaiting.values())
                + sum(self.confirmed.values()) + self.retrying + self.failed + self.cancelled)

    def __str__(self) -> str:
        def counted(counts: Counter[str], what: str) -> str:
            by_channel = ", ".join(f"{n} by {c}" for c, n in sorted(counts.items()))
            return f"{sum(counts.values())} {what}" + (f" ({by_channel})" if by_channel else "")

        text = counted(self.sent, "sent")
        if self.awaiting:
            text += f", {counted(self.awaiting, 'handed over')}, awaiting confirmation"
        if self.confirmed:
            text += f", {counted(self.confirmed, 'confirmed')} of those handed over earlier"
        lost = f", {self.lost} taken over by another worker" if self.lost else ""
        return (f"{text}, {self.failed} failed, {self.retrying} to retry later, "
                f"{self.cancelled} cancelled{lost}")


class Dispatcher:
    """Sends due reminders through their channels.

    ``await dispatcher.run(only=ids)`` handles the given reminders (the
    ``send`` command); without ``only`` it drains everything due (the
    daemon).  It claims no more than it has room to send at once, and
    renews the leases of what is in flight, so none runs out while a
    render or a channel takes its time.  :meth:`stop` makes it finish what
    it holds and claim nothing more.
    """

    def __init__(self, app: App, pm: Any, renderer: Renderer, *, worker: str | None = None,
                 concurrency: int | None = None,
                 progress: Callable[[int], None] | None = None,
                 ask_every_awaiting: bool = False) -> None:
        self.app = app
        self.pm = pm
        self.renderer = renderer
        self.worker = worker or worker_name()
        self.concurrency = concurrency or 2 * renderer.workers + 2
        self.progress = progress
        self.ask_every_awaiting = ask_every_awaiting  # not only those whose question is due
        self.channels = Channels(app, pm)
        self.leases = Leases(app, self.worker)
        self.summary = Summary()
        self.stopping = False
        self.in_flight: set[asyncio.Task[None]] = set()
        self.claimed: set[int] = set()
        self.started: set[int] = set()

    def stop(self) -> None:
        """Claim nothing more and start nothing more; what is in flight finishes."""
        self.stopping = True

    @property
    def unstarted(self) -> set[int]:
        """Reminders claimed but never started (to hand back on shutdown)."""
        return self.claimed - self.started

    async def run(self, *, only: Sequence[int] | None = None, confirm: bool = True) -> Summary:
        if confirm:
            await self.confirm()
        renewing = asyncio.create_task(self.leases.keep_renewing())
        try:
            while not self.stopping:
                leases = await self._claim(only)
                if not leases:
                    if not self.in_flight:
                        break
                    await asyncio.wait(set(self.in_flight), return_when=asyncio.FIRST_COMPLETED)
                    continue
                for lease in leases:
                    if self.stopping:
                        break
                    self.started.add(lease.reminder_id)
                    task = asyncio.create_task(self._guarded(lease))
                    self.in_flight.add(task)
                    task.add_done_callback(self.in_flight.discard)
        except asyncio.CancelledError:
            for task in list(self.in_flight):  # the service's grace period is over
                task.cancel()
            raise
        finally:
            if self.in_flight:
                await asyncio.gather(*self.in_flight, return_exceptions=True)
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
            await self.channels.close()
        return self.summary

    async def confirm(self) -> None:
        """Ask the channels about what they took earlier (print and fax jobs)."""
        done = await confirm_due(self.app, self.channels, worker=self.worker,
                                 every=self.ask_every_awaiting)
        self.summary.confirmed.update(done.sent)
        self.summary.retrying += done.retrying
        self.summary.failed += done.failed
        self.summary.reasons += done.reasons

    async def _claim(self, only: Sequence[int] | None) -> list[Lease]:
        """Claim as many due reminders as there are free places in flight, once half of
        them are free: one claim (a transaction) per few letters, not per letter."""
        room = min(self.concurrency - len(self.in_flight), self.app.settings.daemon.batch_size)
        if room <= 0 or (self.in_flight and room < max(1, self.concurrency // 2)):
            return []
        async with self.app.sessions.begin() as session:
            claim = await outbox.claim(session, self.app.settings.daemon, worker=self.worker,
                                       limit=room, only=only, exclude=set(self.leases.held))
        self.claimed.update(claim.ids)
        return self.leases.add(claim.ids, claim.until)

    async def run_until(self, reminder_ids: Sequence[int], deadline: dt.datetime,
                        waiting: Callable[[int, dt.datetime], None] | None = None) -> Summary:
        """Send ``reminder_ids``, then, as they fall due, those a transient
        failure left pending, until ``deadline``; the summary counts what is
        still pending then as to retry later.  ``waiting(count, when)`` is
        told before each wait.  Asks for no confirmation: the caller does,
        before choosing what to send (:meth:`confirm`).
        """
        while True:
            await self.run(only=reminder_ids, confirm=False)
            async with self.app.sessions() as session:
                pending, due = await outbox.pending_among(session, reminder_ids)
            if self.stopping or not pending or due is None or due > deadline:
                break
            if waiting is not None:
                waiting(pending, due)
            await asyncio.sleep(max((due - utcnow()).total_seconds(), 0))
        self.summary.retrying = pending
        return self.summary

    async def _guarded(self, lease: Lease) -> None:
        reminder_id = lease.reminder_id
        try:
            await self.handle(lease)
        except asyncio.CancelledError:
            log.warning("reminder %s cancelled in flight; its lease will expire and it will "
                        "be sent again", reminder_id)
            raise
        except Exception as exc:
            # A bug or an unforeseen failure: counted and retried with backoff
            # like a transient failure, so max_attempts ends it, never stuck.
            log.exception("reminder %s: unexpected error", reminder_id)
            try:
                await self._record_failure(lease, None,
                                           f"unexpected error: {exc.__class__.__name__}: {exc}",
                                           retryable=True)
            except Exception:
                log.exception("reminder %s: could not record the failure", reminder_id)
        finally:
            self.leases.drop(lease)
            if self.progress is not None:
                self.progress(1)

    async def _load(self, reminder_id: int) -> tuple[Reminder, Customer, LetterJob] | str:
        """The reminder and its letter job, or why it should no longer leave."""
        async with self.app.sessions() as session:
            reminder = await session.get(Reminder, reminder_id)
            assert reminder is not None
            customer = await session.get(Customer, reminder.customer_id)
            assert customer is not None
            as_of = reminder.as_of or self.app.settings.today()
            invoice = None
            if reminder.kind == "letter":
                invoice = await session.get(Invoice, reminder.invoice_id)
                assert invoice is not None
            why_not = not_remindable(self.app.settings, customer, invoice, as_of)
            if why_not is not None:
                return why_not
            if invoice is not None:
                job = await prepare_letter(session, self.app.settings, invoice.number,
                                           level=reminder.level, as_of=as_of, pm=self.pm)
            else:
                try:
                    job = await prepare_statement(session, self.app.settings, customer.code,
                                                  as_of=as_of, level=reminder.level, pm=self.pm)
                except NothingToSend:  # any other RenderError is a failure, named
                    return "nothing is overdue any more"
        return reminder, customer, job

    async def handle(self, lease: Lease) -> None:
        try:
            loaded = await self._load(lease.reminder_id)
        except (RenderError, LedgerError) as exc:
            # A missing invoice copy, a template that fails on this data:
            # named, recorded, and the other reminders go on.
            await self._record_failure(lease, None, str(exc), retryable=False)
            return
        if isinstance(loaded, str):
            await self._record_cancelled(lease, loaded)
            return
        reminder, customer, job = loaded
        try:
            rendered = await self.renderer.render(job)
        except RenderError as exc:
            await self._record_failure(lease, None, str(exc), retryable=True)
            return
        delivery = delivery_for(reminder, customer, rendered, job)
        await self._send(lease, reminder, delivery)

    async def _send(self, lease: Lease, reminder: Reminder, delivery: Delivery) -> None:
        """Try the level's channels in order, from where earlier attempts stopped."""
        names = reminder.channels.split(",")
        skipped: list[str] = []
        for index in range(reminder.channel_index, len(names)):
            name = names[index]
            try:
                channel = await self.channels.get(name)
            except RelancesError as exc:
                skipped.append(f"{name}: {exc}")
                continue
            if not channel.can_reach(delivery.recipient):
                skipped.append(f"{name} cannot reach {delivery.recipient.code}")
                continue
            accepted = functools.partial(self._accepted, lease, reminder, delivery, name,
                                         channel.label)
            why_not: list[str] = []
            try:
                receipt = await self.channels.send(
                    name, delivery, accepted,
                    functools.partial(self._still_due, lease, reminder, why_not),
                    ask_first=reminder.attempts > 1 and not delivery.reprint)
            except DeliveryError as exc:
                notify_delivery_attempted(self.pm, delivery, None, exc)
                if exc.retryable or index == len(names) - 1:
                    await self._record_failure(lease, (name, channel.label), exc.reason,
                                               retryable=exc.retryable)
                    return
                async with self.leases.recording(), self.app.sessions.begin() as session:
                    moved = await records.fallback(session, lease, (name, channel.label),
                                                   exc.reason, next_index=index + 1,
                                                   user=self.app.user)
                if not moved:
                    self.summary.lost += 1
                    return
                log.warning("%s: %s refused it (%s); trying %s", reminder.key, name, exc.reason,
                            names[index + 1])
                continue
            if receipt is None and lease.lost:  # another worker took it over
                self.summary.lost += 1
            elif receipt is None:  # paid, settled or disputed while it waited for the channel
                await self._record_cancelled(lease, why_not[0])
            return
        reason = "no channel can reach the customer (" + "; ".join(skipped) + ")"
        await self._record_failure(lease, None, reason, retryable=False)

    async def _still_due(self, lease: Lease, reminder: Reminder, why_not: list[str]) -> bool:
        """Read the invoices again just before the channel takes the reminder;
        and send nothing once another worker has taken the reminder over.
        """
        async with self.leases.recording(), self.app.sessions() as session:
            if lease.lost or not await still_held(session, lease):
                await stale(session, lease, "not sent")
                return False
        async with self.app.sessions() as session:
            customer = await session.get(Customer, reminder.customer_id)
            assert customer is not None
            as_of = reminder.as_of or self.app.settings.today()
            reason = not_remindable(self.app.settings, customer, None, as_of)
            for invoice in await records.covered_invoices(session, reminder):
                if reason is not None:
                    break
                reason = not_remindable(self.app.settings, customer, invoice, as_of,
                                        minimum=reminder.kind == "letter")
                if reason is not None and reminder.kind == "statement":
                    reason = f"invoice {invoice.number}: {reason}"
        if reason is not None:
            why_not.append(reason)
        return reason is None

    async def _accepted(self, lease: Lease, reminder: Reminder, delivery: Delivery, name: str,
                        label: str, receipt: Receipt) -> None:
        notify_delivery_attempted(self.pm, delivery, receipt, None)
        if receipt.confirmed:
            await self._record_sent(lease, reminder, delivery, name, label, receipt)
            return
        async with self.leases.recording(), self.app.sessions.begin() as session:
            recorded = await records.handed_over(session, lease, delivery, channel=name,
                                                 label=label, receipt=receipt,
                                                 daemon=self.app.settings.daemon,
                                                 user=self.app.user)
        if recorded:
            self.summary.awaiting[name] += 1
            log.info("%s handed over to %s (%s), awaiting confirmation", reminder.key, name,
                     receipt.reference)
        else:
            self.summary.lost += 1

    async def _record_sent(self, lease: Lease, reminder: Reminder, delivery: Delivery, name: str,
                           label: str, receipt: Receipt) -> None:
        stamp = reminder.as_of or self.app.settings.today()
        async with self.leases.recording(), self.app.sessions.begin() as session:
            recorded = await records.sent(session, lease, delivery, channel=name, label=label,
                                          receipt=receipt, stamp=stamp, user=self.app.user)
        if not recorded:
            self.summary.lost += 1
            return
        self.summary.sent[name] += 1
        log.info("%s sent by %s (%s)", reminder.key, name, receipt.reference)

    async def _record_cancelled(self, lease: Lease, reason: str) -> None:
        async with self.leases.recording(), self.app.sessions.begin() as session:
            recorded = await records.cancelled(session, lease, reason, user=self.app.user)
        if recorded:
            self.summary.cancelled += 1
        else:
            self.summary.lost += 1

    async def _record_failure(self, lease: Lease, channel: tuple[str, str] | None,
                              reason: str, *, retryable: bool) -> None:
        reminder_id = lease.reminder_id
        async with self.leases.recording(), self.app.sessions.begin() as session:
            outcome = await records.failed(
                session, lease, self.app.settings.daemon, channel=channel, reason=reason,
                retryable=retryable, user=self.app.user)
        if outcome is None:
            self.summary.lost += 1
            return
        if outcome == outbox.FAILED:
            self.summary.failed += 1
            self.summary.reasons.append(f"reminder {reminder_id}: {reason}")
        else:
            self.summary.retrying += 1
            self.summary.reasons.append(f"reminder {reminder_id}: {reason} (will retry)")
        log.warning("reminder %s: %s (%s)", reminder_id, reason, outcome)


async def record_run(app: App, job: str, started: dt.datetime, queued: int,
                     summary: Summary) -> None:
    """Keep a sending run (the daemon's or `send`'s) for `relances status`."""
    async with app.sessions.begin() as session:
        session.add(RunRecord(job=job, user=app.user, started_at=started, finished_at=utcnow(),
                              host=socket.gethostname(), summary=f"{queued} queued; {summary}",
                              ok=summary.failed == 0))
