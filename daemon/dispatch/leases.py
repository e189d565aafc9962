"""Leases on claimed reminders: renewed while in flight, checked by every outcome.

A claim writes the worker's name in ``claimed_by`` and an expiry in
``lease_until``.  While the reminder is in flight its dispatcher renews
the lease (:meth:`Leases.keep_renewing`), so a slow render or a slow
channel never lets another daemon take it.  An outcome is written only by
an UPDATE whose WHERE clause names the holder and the lease it last set
(:func:`held`): a holder whose lease ran out and was taken over changes
nothing, and says so in the log (:func:`stale`).  A lease that ran out
but that nobody took over is still its holder's: no one else can have
sent the reminder meanwhile.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from relances.daemon.dispatch.outbox import AWAITING, SENDING
from relances.daemon.models import Reminder, utcnow
from relances.daemon.storage import App

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Lease:
    """One claimed reminder as its holder knows it: who holds it, until when.

    ``awaiting``: the channel's reference of a reminder that waits for its
    channel's confirmation; such a reminder holds no lease, and an outcome
    is written only while it still waits for that same job.
    """

    reminder_id: int
    worker: str
    until: dt.datetime
    lost: bool = False
    awaiting: str | None = None


def held(lease: Lease) -> ColumnElement[bool]:
    """The WHERE clause of an UPDATE that only the lease's holder may make."""
    if lease.awaiting is not None:
        return and_(Reminder.id == lease.reminder_id, Reminder.state == AWAITING,
                    Reminder.reference == lease.awaiting)
    return and_(Reminder.id == lease.reminder_id, Reminder.state == SENDING,
                Reminder.claimed_by == lease.worker, Reminder.lease_until == lease.until)


async def still_held(session: AsyncSession, lease: Lease) -> bool:
    found = await session.scalar(select(Reminder.id).where(held(lease)))
    return found is not None


async def stale(session: AsyncSession, lease: Lease, what: str, reason: str = "") -> None:
    """Log what was not done (``"retry not recorded"``, ``"not sent"``) and
    why: the lease is gone, and the row is as the database now holds it.
    """
    lease.lost = True
    row = (await session.execute(
        select(Reminder.state, Reminder.claimed_by, Reminder.lease_until)
        .where(Reminder.id == lease.reminder_id))).one_or_none()
    state, holder, until = row if row is not None else ("gone", None, None)
    log.warning(
        "reminder %s: %s%s: the lease of %s until %s is no longer held "
        "(the reminder is %s, claimed by %s until %s)",
        lease.reminder_id, what, f" ({reason})" if reason else "", lease.worker,
        f"{lease.until:%H:%M:%S}", state, holder, f"{until:%H:%M:%S}" if until else "-",
        extra={"reminder_id": lease.reminder_id, "outcome": what, "worker": lease.worker,
               "lease_until": lease.until.isoformat(), "state": state, "claimed_by": holder})


class Leases:
    """The leases one dispatcher holds, renewed every third of their length.

    An outcome is written inside :meth:`recording`, which a renewal never
    overlaps: the lease an outcome compares is the one in the database.
    """

    def __init__(self, app: App, worker: str) -> None:
        self.app = app
        self.worker = worker
        self.held: dict[int, Lease] = {}
        self._lock = asyncio.Lock()

    @property
    def seconds(self) -> int:
        return self.app.settings.daemon.lease_seconds

    def add(self, reminder_ids: list[int], until: dt.datetime) -> list[Lease]:
        leases = [Lease(reminder_id, self.worker, until) for reminder_id in reminder_ids]
        self.held.update((lease.reminder_id, lease) for lease in leases)
        return leases

    def drop(self, lease: Lease) -> None:
        if self.held.get(lease.reminder_id) is lease:
            del self.held[lease.reminder_id]

    @asynccontextmanager
    async def recording(self) -> AsyncIterator[None]:
        """Hold off renewals while an outcome is written."""
        async with self._lock:
            yield

    async def renew(self) -> None:
        """Push back every lease still held; mark the others lost."""
        async with self._lock:
            leases = [lease for lease in self.held.values() if not lease.lost]
            if not leases:
                return
            until = utcnow() + dt.timedelta(seconds=self.seconds)
            renewed: set[int] = set()
            async with self.app.sessions.begin() as session:
                # One statement per expiry: the leases of one claim share theirs.
                for old in sorted({lease.until for lease in leases}):
                    ids = [lease.reminder_id for lease in leases if lease.until == old]
                    result = await session.execute(
                        update(Reminder)
                        .where(Reminder.id.in_(ids), Reminder.state == SENDING,
                               Reminder.claimed_by == self.worker, Reminder.lease_until == old)
                        .values(lease_until=until).returning(Reminder.id)
                        .execution_options(synchronize_session=False))
                    renewed.update(result.scalars())
            for lease in leases:
                if lease.reminder_id in renewed:
                    lease.until = until
                else:
                    lease.lost = True
                    log.warning("reminder %s: the lease of %s is no longer held (another "
                                "worker took the reminder over); its outcome here will not be "
                                "recorded", lease.reminder_id, self.worker,
                                extra={"reminder_id": lease.reminder_id, "worker": self.worker})

    async def keep_renewing(self) -> None:
        """Renew until cancelled; a failed renewal is logged and tried again."""
        while True:
            await asyncio.sleep(self.seconds / 3)
            try:
                await self.renew()
            except Exception:  # noqa: BLE001 - the database may be back next time
                log.exception("renewing the leases of %s failed", self.worker)
