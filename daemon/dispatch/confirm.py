"""Confirmations: asking the channels how the jobs they took went.

A reminder whose channel took it without confirming it yet (a print job
queued in CUPS, a fax job in HylaFAX) waits in the state ``awaiting``,
unstamped and holding no lease.  Every dispatch run first asks the channels
about those whose question is due (every ``daemon.confirm_every_seconds``):

- gone: the invoices are stamped "Relancé le" and the history says so;
- still under way: asked again later; past ``daemon.confirm_within_minutes``
  the level's next channel sends it, as after a refusal (none left: failed);
- failed: retried, or sent by the next channel, as a refusal when sending
  would be (:meth:`relances.plugins.Channel.confirm` raised).

Each outcome is written only while the reminder still waits for that same
job (:func:`relances.daemon.dispatch.leases.held`), so two daemons asking
at once record it once.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update

from relances.daemon.dispatch import records
from relances.daemon.dispatch.channels import Channels
from relances.daemon.dispatch.leases import Lease, held
from relances.daemon.dispatch.outbox import AWAITING, FAILED
from relances.daemon.errors import RelancesError
from relances.daemon.models import Reminder, utcnow
from relances.daemon.storage import App
from relances.plugins.contract import DeliveryError, Receipt

log = logging.getLogger(__name__)


@dataclass
class Confirmations:
    """What one round of questions recorded."""

    sent: Counter[str] = field(default_factory=Counter)  # confirmed, by channel
    retrying: int = 0
    failed: int = 0
    moved: int = 0  # sent on to the level's next channel
    reasons: list[str] = field(default_factory=list)


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


async def confirm_due(app: App, channels: Channels, *, worker: str, every: bool = False,
                      limit: int = 500) -> Confirmations:
    """Ask the channels about every awaiting reminder whose question is due;
    with ``every``, about every awaiting reminder (a person is waiting)."""
    done = Confirmations()
    now = utcnow() + (dt.timedelta(days=366 * 100) if every else dt.timedelta())
    async with app.sessions() as session:
        rows = (await session.execute(
            select(Reminder.id, Reminder.sent_channel, Reminder.reference,
                   Reminder.handed_over_at, Reminder.channels, Reminder.channel_index,
                   Reminder.as_of)
            .where(Reminder.state == AWAITING, Reminder.next_attempt_at <= now)
            .order_by(Reminder.next_attempt_at, Reminder.id).limit(limit))).all()
    for row in rows:
        try:
            await _ask(app, channels, row, done, worker)
        except Exception:  # one channel's bug must not stop the others' confirmations
            log.exception("reminder %s: asking %s about %s failed", row.id, row.sent_channel,
                          row.reference)
    return done


async def _ask(app: App, channels: Channels, row: Any, done: Confirmations, worker: str) -> None:
    daemon = app.settings.daemon
    name: str = row.sent_channel or ""
    since = _utc(row.handed_over_at or utcnow())
    lease = Lease(row.id, worker, since, awaiting=row.reference)
    label = name
    answer: Receipt | None = None
    try:
        channel = await channels.get(name)
        label = channel.label
        answer = await channel.confirm(Receipt(name, row.reference, confirmed=False))
    except DeliveryError as exc:
        await _not_gone(app, lease, row, (name, label), exc.reason, exc.retryable, done)
        return
    except RelancesError as exc:  # the channel is no longer configured: no one to ask
        log.warning("reminder %s: cannot ask %s about %s: %s", row.id, name, row.reference, exc)
    if answer is not None and answer.confirmed:
        stamp = row.as_of or app.settings.today()
        async with app.sessions.begin() as session:
            if await records.confirmed(session, lease, channel=name, label=label, receipt=answer,
                                       stamp=stamp, user=app.user):
                done.sent[name] += 1
                log.info("reminder %s confirmed by %s (%s)", row.id, name, answer.reference)
        return
    within = dt.timedelta(minutes=daemon.confirm_within_minutes)
    if utcnow() - since >= within:
        reason = (f"{row.reference} not confirmed within {_minutes(daemon.confirm_within_minutes)}"
                  " of being handed over")
        await _not_gone(app, lease, row, (name, label), reason, False, done)
        return
    async with app.sessions.begin() as session:
        await session.execute(
            update(Reminder).where(held(lease))
            .values(next_attempt_at=utcnow() + dt.timedelta(seconds=daemon.confirm_every_seconds))
            .execution_options(synchronize_session=False))


async def _not_gone(app: App, lease: Lease, row: Any, channel: tuple[str, str], reason: str,
                    retryable: bool, done: Confirmations) -> None:
    """The job failed, or no confirmation came in time: as a refusal when sending."""
    names = row.channels.split(",")
    last = row.channel_index >= len(names) - 1
    async with app.sessions.begin() as session:
        if retryable or last:
            state = await records.failed(session, lease, app.settings.daemon, channel=channel,
                                         reason=reason, retryable=retryable, user=app.user)
            if state == FAILED:
                done.failed += 1
            elif state is not None:
                done.retrying += 1
            if state is not None:
                done.reasons.append(f"reminder {row.id}: {reason}")
            return
        if await records.fallback(session, lease, channel, reason, next_index=row.channel_index + 1,
                                  user=app.user):
            done.moved += 1
            log.warning("reminder %s: %s (%s); trying %s", row.id, reason, channel[0],
                        names[row.channel_index + 1])


def _minutes(minutes: int) -> str:
    return f"{minutes} min" if minutes < 120 else f"{minutes / 60:g} h"
