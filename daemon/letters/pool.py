"""HTML to PDF in a pool of worker processes.

WeasyPrint is CPU-bound and blocking, so every document is rendered in a
process pool as wide as the cores.  Each worker builds, once, what does
not change between letters: the Jinja environments, the parsed
stylesheets, the font configuration and the image cache.  The event loop
only awaits futures.  Workers run within the bounds of
:mod:`relances.daemon.letters.bounds`; one that dies is replaced by the
next render.  One-off commands (``preview``, ``report``) render in a
worker of their own, under the same bounds.
"""

from __future__ import annotations

import asyncio
import ctypes.util
import logging
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from relances.daemon.config import Settings
from relances.daemon.errors import RenderError
from relances.daemon.letters.bounds import (
    STOPPED,
    Limits,
    bounded,
    confine,
    exit_with,
    one_worker,
    process_context,
    result_of,
)
from relances.daemon.letters.job import LetterJob
from relances.plugins.contract import Attachment

if TYPE_CHECKING:
    from relances.daemon.letters.pdf import PdfEngine

log = logging.getLogger(__name__)

__all__ = ["RenderedLetter", "Renderer", "harfbuzz_subset_available"]


@dataclass(frozen=True)
class RenderedLetter:
    """A rendered document: ``pdf`` for paper and fax, ``attachments`` for email."""

    pdf: bytes
    letter_pdf: bytes
    attachments: tuple[Attachment, ...]
    subject: str
    text_body: str
    html_body: str
    filename: str


def harfbuzz_subset_available() -> bool:
    """Whether HarfBuzz's subsetter is installed; without it PDFs render ~10× slower."""
    return ctypes.util.find_library("harfbuzz-subset") is not None


# One engine per worker process, built by the pool's initializer.
_ENGINE: PdfEngine | None = None


def _init_worker(settings: Settings, owner: int, daemon: bool = True,
                 warm: bool | None = None) -> None:
    global _ENGINE
    # WeasyPrint is imported here, in the worker (or by the fork server's
    # preload): the process that prepares the letters never pays for it.
    from relances.daemon.letters.pdf import PdfEngine

    if daemon:
        # The parent decides when workers stop.  A Ctrl-C or a hangup reaches
        # the whole process group: left to their defaults, they would kill the
        # workers mid-letter and break the pool while the daemon carries on,
        # or reloads, or finishes its grace period.  (A one-off command's
        # worker stops with the command's Ctrl-C.)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    else:
        # Forked from a command's process, the worker may carry its handler.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    exit_with(owner)
    limits = Limits.of(settings)
    confine(limits)
    _ENGINE = PdfEngine(settings, limits)
    if daemon if warm is None else warm:  # by default, the daemon's workers warm up
        _ENGINE.warm_up()


def _ready() -> int:
    """A render worker's answer to the warm-up: its pid, once initialised."""
    time.sleep(0.05)  # long enough for the pool to hand the next one to another worker
    return os.getpid()


def _engine() -> PdfEngine:
    if _ENGINE is None:  # pragma: no cover - the initializer always runs first
        raise RenderError("render worker not initialised")
    return _ENGINE


def _render_job(job: LetterJob) -> RenderedLetter:
    return _rendered(_engine(), job)


def _render_document(language: str, template: str, context: dict[str, Any]) -> bytes:
    return _engine().pdf(language, template, context)


def _render_html(job: LetterJob) -> str:
    return _engine().standalone_html(job.language, job.template, job.context)


def _rendered(engine: PdfEngine, job: LetterJob) -> RenderedLetter:
    letter_pdf = engine.pdf(job.language, job.template, job.context)
    with bounded(engine.limits, job.template):
        copies = engine.read_copies(job.copy_paths)
        pdf = engine.merge(letter_pdf, copies) if copies else letter_pdf
    text_body, html_body = engine.email_bodies(job.language, job.context)
    attachments = (Attachment(job.filename, letter_pdf),) + tuple(
        Attachment(name, content) for name, content in copies
    )
    return RenderedLetter(pdf=pdf, letter_pdf=letter_pdf, attachments=attachments,
                          subject=job.subject, text_body=text_body, html_body=html_body,
                          filename=job.filename)


class Renderer:
    """Renders letter jobs in worker processes.

    ``async with Renderer(settings) as r: letter = await r.render(job)``.
    At most two jobs per worker are in flight, so a caller may start many
    renders at once without queueing every job's data in the pool.

    A one-off command (``send``, ``preview``) calls :meth:`start_early`
    before its event loop starts: one worker is forked at once and imports
    WeasyPrint while the command reads the ledger; the others start, from
    the fork server, only when more than that worker's share is in flight.
    """

    def __init__(self, settings: Settings, workers: int | None = None) -> None:
        self.settings = settings
        self.workers = workers or settings.daemon.render_workers or os.cpu_count() or 1
        self._pool: ProcessPoolExecutor | None = None
        self._early: ProcessPoolExecutor | None = None
        self._early_busy = 0  # jobs in flight in the early worker
        self._slots: asyncio.Semaphore | None = None
        self._used = False  # whether anything was rendered (or the workers only warmed up)
        if not harfbuzz_subset_available():
            log.warning("libharfbuzz-subset is not installed: PDF rendering will be about "
                        "ten times slower (Debian package libharfbuzz-subset0)")

    def start(self) -> ProcessPoolExecutor:
        """Start the worker processes now rather than at the first render."""
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=max(1, self.workers - (self._early is not None)),
                mp_context=process_context(), initializer=_init_worker,
                initargs=(self.settings, os.getpid()),
            )
        return self._pool

    def start_early(self) -> None:
        """Fork one worker now, for a one-off command, before its event loop starts.

        It imports WeasyPrint while the command reads the ledger, on the
        other core, instead of after it.  Forking is safe only while this
        process runs one thread; with more, nothing starts early.
        """
        if self._pool is not None or self._early is not None \
                or threading.active_count() != 1 \
                or "fork" not in multiprocessing.get_all_start_methods():
            return
        self._early = ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("fork"),
            initializer=_init_worker, initargs=(self.settings, os.getpid(), False, False),
        )
        self._early.submit(_ready)  # a fork pool starts its worker at the first job

    async def warm(self) -> None:
        """Start every worker now, so the first letter does not wait for them."""
        self.start()
        await asyncio.gather(*(self._submit("warm-up", _ready) for _ in range(self.workers)))

    @property
    def worker_pids(self) -> list[int]:
        pids: list[int] = []
        for pool in (self._early, self._pool):
            pids += list(getattr(pool, "_processes", None) or {})
        return pids

    def _executor(self) -> tuple[ProcessPoolExecutor, bool]:
        """Where the next job goes: the early worker while it has room, else the pool."""
        if self._early is not None and (self._early_busy < 2 or self.workers == 1):
            return self._early, True
        return self.start(), False

    async def _submit(self, template: str, func: Any, *args: Any) -> Any:
        if self._slots is None:
            self._slots = asyncio.Semaphore(2 * self.workers)
        async with self._slots:
            loop = asyncio.get_running_loop()
            executor, early = self._executor()
            self._early_busy += early
            try:
                return await loop.run_in_executor(executor, func, *args)
            except BrokenProcessPool:
                # A worker died (killed, out of memory, past its CPU backstop):
                # the next render starts a new pool, hence new workers.
                self._discard(executor)
                raise RenderError(f"{template}: {STOPPED}") from None
            finally:
                self._early_busy -= early

    async def render(self, job: LetterJob) -> RenderedLetter:
        """Render one letter or statement in a worker process."""
        self._used = True
        result: RenderedLetter = await self._submit(job.template, _render_job, job)
        return result

    async def render_document(self, language: str, template: str,
                              context: dict[str, Any]) -> bytes:
        """Render any template (the reminders table) to PDF in a worker."""
        self._used = True
        result: bytes = await self._submit(template, _render_document, language, template,
                                           context)
        return result

    def _once(self, template: str, func: Any, *args: Any) -> Any:
        self._used = True
        if self._early is not None:
            early = self._early
            try:
                return result_of(early.submit(func, *args), template)
            except RenderError:
                self._discard(early)
                raise
        with one_worker(_init_worker, (self.settings, os.getpid(), False)) as pool:
            return result_of(pool.submit(func, *args), template)

    def render_sync(self, job: LetterJob) -> RenderedLetter:
        """Render in a worker process of its own, within the same bounds, and wait:
        for one-off commands like ``preview``."""
        result: RenderedLetter = self._once(job.template, _render_job, job)
        return result

    def render_html_sync(self, job: LetterJob) -> str:
        """The letter's HTML as WeasyPrint lays it out, as one self-contained file."""
        result: str = self._once(job.template, _render_html, job)
        return result

    def render_document_sync(self, language: str, template: str,
                             context: dict[str, Any]) -> bytes:
        result: bytes = self._once(template, _render_document, language, template, context)
        return result

    def _discard(self, executor: ProcessPoolExecutor) -> None:
        if executor is self._early:
            self._early = None
        elif executor is self._pool:
            self._pool = None
        executor.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Stop the workers, waiting for the documents they are rendering; a worker
        that only warmed up (nothing was due) is stopped at once."""
        pools = [p for p in (self._early, self._pool) if p is not None]
        self._early = self._pool = None
        for pool in pools:
            if not self._used:
                for process in list((getattr(pool, "_processes", None) or {}).values()):
                    process.terminate()
            pool.shutdown(wait=True, cancel_futures=True)

    async def __aenter__(self) -> Renderer:
        self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        # Joining the workers blocks; do it off the event loop.
        await asyncio.to_thread(self.close)
