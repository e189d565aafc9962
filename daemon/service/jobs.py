"""The two jobs the daemon runs on its clock, also run by hand by the CLI.

``escalate_job`` raises levels (on PostgreSQL under an advisory lock, so one
instance escalates at a time); ``dispatch_job`` queues what is due at the
levels that send on their own and sends everything due in the outbox.
Both depend only on the ledger's dates, so a run missed while the daemon
was down is caught up by the next one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from relances.daemon.dispatch import outbox, records
from relances.daemon.dispatch.run import Dispatcher, Summary, record_run
from relances.daemon.escalation.run import EscalationResult, escalate
from relances.daemon.letters.pool import Renderer
from relances.daemon.models import utcnow
from relances.daemon.service.locks import try_advisory_lock
from relances.daemon.storage import App

log = logging.getLogger(__name__)

ESCALATION_LOCK = "relances:escalate"


@dataclass
class DispatchRun:
    queued: int
    summary: Summary


async def escalate_job(app: App) -> EscalationResult | None:
    """Escalate as of today; None when another instance is escalating."""
    async with app.sessions.begin() as session:
        if not await try_advisory_lock(session, ESCALATION_LOCK):
            log.info("escalation skipped: another instance holds the lock")
            return None
        result = await escalate(session, app.settings, as_of=app.settings.today(), user=app.user)
    log.info("escalation: %s", result)
    return result


async def dispatch_job(app: App, renderer: Renderer, *, worker: str,
                       register: Callable[[Dispatcher], None] | None = None) -> DispatchRun:
    """Read the mailboxes (a bounce sends its reminder on), queue what the automatic
    levels make due, then send everything due."""
    if app.settings.mailboxes:
        from relances.daemon.dispatch.mailroom import read_mailboxes

        try:
            log.info("mailboxes: %s", await read_mailboxes(app))
        except Exception:  # noqa: BLE001 - what came back must not stop what is due leaving
            log.exception("mailboxes: reading them failed; sending anyway")
    async with app.sessions.begin() as session:
        queued = await outbox.queue(session, app.settings, outbox.Request(auto_only=True),
                                    user=app.user)
    started = utcnow()
    dispatcher = Dispatcher(app, app.plugins, renderer, worker=worker)
    if register is not None:
        register(dispatcher)
    try:
        summary = await dispatcher.run()
    finally:
        if dispatcher.unstarted:
            async with app.sessions.begin() as session:
                released = await records.release(session, dispatcher.unstarted, worker)
            log.info("handed back %d claimed reminders that were not started", released)
    if summary.handled or queued.ids:
        await record_run(app, "dispatch", started, len(queued.ids), summary)
        log.info("dispatch: %d queued; %s", len(queued.ids), summary)
    return DispatchRun(len(queued.ids), summary)
