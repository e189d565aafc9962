"""``relances daemon``: the clock around escalation and dispatch.

Three phases, as uvicorn and arq have them:

- :meth:`Service.startup` validates the settings and the templates, takes
  the single-instance lock on a SQLite database, checks the schema, starts
  the render workers and the scheduler, and tells systemd it is ready;
- :meth:`Service.run` runs the jobs the scheduler wakes, one at a time,
  catching up once at start what was missed while the daemon was down;
- :meth:`Service.shutdown` stops claiming work, lets what is in flight
  finish within the grace period, cancels the rest and says what it
  cancelled, hands back what it claimed and did not start, and exits.

Signal handlers only set flags: SIGTERM and SIGINT stop (a second SIGINT
forces the exit), SIGHUP reloads the settings and templates, keeping the
old ones when the new ones do not validate.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from relances.daemon.config import Settings, load_settings
from relances.daemon.dispatch import outbox
from relances.daemon.dispatch.channels import worker_name
from relances.daemon.dispatch.run import Dispatcher
from relances.daemon.errors import RelancesError
from relances.daemon.letters.pool import Renderer
from relances.daemon.service.inbox import Inbox
from relances.daemon.service.jobs import dispatch_job, escalate_job
from relances.daemon.service.locks import SingleInstanceLock, instance_lock_for
from relances.daemon.service.preflight import SCHEDULED_JOBS, cron_trigger, preflight
from relances.daemon.service.systemd import Notifier, watchdog_interval
from relances.daemon.storage import App
from relances.plugins.manager import get_plugin_manager

log = logging.getLogger(__name__)

JOBS = SCHEDULED_JOBS
IMPORT_JOB = "import"
ESCALATION_SETTLE_SECONDS = 30
ONCE_SETTLE_SECONDS = 1.0  # a --once run looks twice at the inbox, this far apart


def validated(path: Path, pm: Any = None) -> tuple[Settings, list[str]]:
    """Settings that pass every check the daemon relies on (those of
    ``check-config``), with their warnings."""
    settings = load_settings(path)
    return settings, preflight(settings, pm)


class Service:
    def __init__(self, config: Path, user: str, *, once: bool = False) -> None:
        self.config = config
        self.user = user
        self.once = once
        self.worker = worker_name()
        self.notifier = Notifier()
        self.app: App | None = None
        self.renderer: Renderer | None = None
        self.scheduler: AsyncIOScheduler | None = None
        self.lock: SingleInstanceLock | None = None
        self.dispatcher: Dispatcher | None = None
        self.wanted: asyncio.Queue[str] = asyncio.Queue()
        self.stop_requested = asyncio.Event()
        self.reload_requested = False
        self.interrupts = 0
        self.current: asyncio.Task[None] | None = None
        self.started = False
        self.watchdog: asyncio.Task[None] | None = None
        self.inbox: Inbox | None = None
        self.jobs: tuple[str, ...] = JOBS

    # -- startup ---------------------------------------------------------------------

    async def startup(self) -> None:
        # Plugins load here, once: a broken one fails the start.
        plugins = get_plugin_manager()
        settings, warnings = validated(self.config, plugins)
        for warning in warnings:
            log.warning("%s", warning)
        self.lock = instance_lock_for(settings.database_url)
        if self.lock is not None:
            self.lock.acquire()
        self.app = App(settings=settings, user=self.user, _plugins=plugins)
        await self.app.ready()
        self._watch_inbox(settings)
        self.renderer = Renderer(settings)
        await self.renderer.warm()
        # --once too: a cron or timer run that is stopped must hand back its
        # claims and take its render workers with it, not die on the spot.
        self._install_signals()
        if not self.once:
            self.scheduler = AsyncIOScheduler(timezone=settings.zone)
            self._schedule(settings)
            self.scheduler.start()
            interval = watchdog_interval()
            if interval and settings.daemon.watchdog:
                self.watchdog = asyncio.create_task(self._watchdog(interval))
        for job in self.jobs:  # catch up what was missed while the daemon was down
            self.wanted.put_nowait(job)
        self.started = True
        self.notifier.ready(f"started on {settings.database_url.split('://')[0]}")
        log.info("relances daemon started (%s, worker %s)", self.config, self.worker)

    def _watch_inbox(self, settings: Settings) -> None:
        """Watch ``imports.inbox`` when it is set: imports run first, then the jobs."""
        assert self.app is not None
        folder = settings.imports.inbox
        if folder is None:
            self.inbox, self.jobs = None, JOBS
            return
        path = settings.path(folder)
        path.mkdir(parents=True, exist_ok=True)
        if self.inbox is None or self.inbox.folder != path:
            self.inbox = Inbox(self.app, path)
        self.jobs = (IMPORT_JOB, *JOBS)

    def _schedule(self, settings: Settings) -> None:
        assert self.scheduler is not None
        for job in (IMPORT_JOB, *JOBS):
            if self.scheduler.get_job(job):
                self.scheduler.remove_job(job)
            if job == IMPORT_JOB and self.inbox is None:
                continue
            trigger = (IntervalTrigger(seconds=settings.imports.poll_seconds)
                       if job == IMPORT_JOB else cron_trigger(settings, job))
            if trigger is not None:
                self.scheduler.add_job(self.wanted.put_nowait, trigger, args=(job,), id=job,
                                       coalesce=True, max_instances=1, misfire_grace_time=3600)

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.request_stop)
        loop.add_signal_handler(signal.SIGINT, self._interrupt)
        loop.add_signal_handler(signal.SIGHUP, self.request_reload)

    def request_stop(self) -> None:
        """Stop claiming work now; the run loop returns and shutdown() follows."""
        if self.dispatcher is not None:
            self.dispatcher.stop()
        self.stop_requested.set()
        self.wanted.put_nowait("stop")  # wake the run loop

    def _interrupt(self) -> None:
        self.interrupts += 1
        if self.interrupts > 1:
            log.warning("second interrupt: exiting now")
            os._exit(130)
        self.request_stop()

    def request_reload(self) -> None:
        self.reload_requested = True
        self.wanted.put_nowait("reload")

    async def _watchdog(self, interval: float) -> None:
        while True:
            self.notifier.watchdog()
            await asyncio.sleep(interval)

    # -- run -------------------------------------------------------------------------

    async def run(self) -> None:
        """Run the jobs the scheduler asks for until told to stop (or once each)."""
        done: set[str] = set()
        stopping = asyncio.create_task(self.stop_requested.wait())
        try:
            while not self.stop_requested.is_set():
                if self.once and done >= set(self.jobs):
                    return
                job = await self.wanted.get()
                if job == "stop":
                    return
                if job == "reload":
                    await self._reload()
                    continue
                self.current = asyncio.create_task(self._run_job(job))
                await asyncio.wait({self.current, stopping},
                                   return_when=asyncio.FIRST_COMPLETED)
                if not self.current.done():
                    return  # stopping: shutdown() gives it the grace period
                self.current = None
                done.add(job)
        finally:
            stopping.cancel()

    async def _run_job(self, job: str) -> None:
        assert self.app is not None and self.renderer is not None
        self.notifier.status(f"running {job}")
        try:
            if job == IMPORT_JOB:
                text = await self._import()
            elif job == "escalate":
                result = await escalate_job(self.app)
                if result is None:
                    # Another instance is escalating: join its dispatch once it
                    # has had time to finish, rather than wait for the schedule.
                    self._dispatch_later(ESCALATION_SETTLE_SECONDS)
                elif result.total:
                    self.wanted.put_nowait("dispatch")
                text = f"escalation: {result}" if result else "escalation skipped"
            else:
                run = await dispatch_job(self.app, self.renderer, worker=self.worker,
                                         register=self._set_dispatcher)
                text = f"dispatch: {run.queued} queued; {run.summary}"
                await self._schedule_retry()
        except RelancesError as exc:
            log.error("%s failed: %s", job, exc)
            text = f"{job} failed: {exc}"
        except Exception:
            log.exception("%s failed", job)
            text = f"{job} failed"
        finally:
            self.dispatcher = None
        self.notifier.status(f"idle; last {text}")

    async def _import(self) -> str:
        """Import what is whole in the inbox (once: what is there, given a second to settle)."""
        if self.inbox is None:
            return "no inbox"
        if self.once:
            self.inbox.ready()
            await asyncio.sleep(ONCE_SETTLE_SECONDS)
        outcomes = await self.inbox.look()
        refused = sum(not o.ok for o in outcomes)
        return f"{len(outcomes) - refused} files imported, {refused} refused"

    def _set_dispatcher(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        if self.stop_requested.is_set():
            dispatcher.stop()

    def _dispatch_at(self, when: dt.datetime, job_id: str) -> None:
        """One extra dispatch at ``when``, besides the scheduled ones."""
        if self.scheduler is not None:
            self.scheduler.add_job(self.wanted.put_nowait, DateTrigger(when),
                                   args=("dispatch",), id=job_id, replace_existing=True)

    def _dispatch_later(self, seconds: float) -> None:
        when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
        self._dispatch_at(when, "dispatch-after-escalation")

    async def _schedule_retry(self) -> None:
        """Wake dispatch when the next retry falls due, if before its next scheduled run."""
        if self.scheduler is None or self.app is None:
            return
        async with self.app.sessions() as session:
            due = await outbox.next_due_at(session)
        if due is None:
            return
        regular = self.scheduler.get_job("dispatch")
        if regular is not None and regular.next_run_time is not None \
                and regular.next_run_time <= due:
            return
        self._dispatch_at(max(due, dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)), "retry")

    async def _reload(self) -> None:
        self.reload_requested = False
        assert self.app is not None
        self.notifier.reloading("reloading settings and templates")
        try:
            # Rendering every template takes a while: not on the event loop.
            settings, warnings = await asyncio.to_thread(validated, self.config)
        except RelancesError as exc:
            log.error("reload refused, the running settings stay in force: %s", exc)
            self.notifier.ready("reload refused: settings invalid")
            return
        for warning in warnings:
            log.warning("%s", warning)
        old = self.renderer
        self.app.settings = settings
        self._watch_inbox(settings)
        self.renderer = Renderer(settings)
        await self.renderer.warm()
        if self.scheduler is not None:
            self._schedule(settings)
        if old is not None:
            await asyncio.to_thread(old.close)
        log.info("settings and templates reloaded from %s", self.config)
        self.notifier.ready("settings reloaded")

    # -- shutdown --------------------------------------------------------------------

    async def shutdown(self) -> None:
        self.notifier.stopping("stopping: finishing what is in flight")
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
        if self.watchdog is not None:
            self.watchdog.cancel()
        grace = self.app.settings.daemon.grace_period if self.app else 0
        if self.dispatcher is not None:
            self.dispatcher.stop()
        if self.current is not None and not self.current.done():
            log.info("waiting up to %gs for the sends in flight", grace)
            done, _ = await asyncio.wait({self.current}, timeout=grace)
            if not done:
                keys = sorted(str(i) for i in (self.dispatcher.started if self.dispatcher else ()))
                log.warning("grace period over: cancelling the job in flight (reminders %s); "
                            "their leases will expire and they will be sent again",
                            ", ".join(keys) or "none")
                self.current.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self.current
        if self.renderer is not None:
            await asyncio.to_thread(self.renderer.close)
        if self.app is not None:
            await self.app.close()
        if self.lock is not None:
            self.lock.release()
        if self.started:
            log.info("relances daemon stopped")
        self.notifier.close()


async def serve(config: Path, user: str, *, once: bool = False,
                beside: Callable[[App], contextlib.AbstractAsyncContextManager[Any]] | None = None,
                ) -> None:
    """Run the service until it is stopped.  ``beside(app)``, when given, is
    entered once the service has started and left before it shuts down: the
    command line serves the web screen in it (the service knows nothing of
    the web); a ``once`` run enters nothing beside it."""
    service = Service(config, user, once=once)
    try:
        await service.startup()
        assert service.app is not None
        around = (beside(service.app) if beside is not None and not once
                  else contextlib.nullcontext())
        async with around:
            await service.run()
    finally:
        await service.shutdown()
