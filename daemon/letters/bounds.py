"""Bounds on a template's work, and the worker processes that hold them.

Templates are written by users: a loop inside a loop, or a string doubled
in a loop, would otherwise hang ``check-config`` or take the machine's
memory.  Every template is therefore rendered in a worker process (the
render pool's, or one started for a single command) that runs under:

- an address-space limit, ``letters.render_memory_mb`` (``RLIMIT_AS``):
  an allocation past it raises ``MemoryError`` in the worker, not in the
  machine;
- a deadline per template, ``letters.render_timeout`` (a ``SIGALRM`` timer
  in the worker's main thread), and behind it a CPU-time limit that ends a
  worker caught in one long C call the timer cannot interrupt;
- a cap on what a template writes, ``letters.render_output_mb`` (enforced by
  :func:`~relances.daemon.letters.templating.render_template`, and here on
  the PDF).

A breach is a :class:`RenderError` naming the template; a worker that dies
is replaced by a new one the next time work is handed over.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import resource
import select
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any

from relances.daemon.config import Settings
from relances.daemon.errors import RenderError

log = logging.getLogger(__name__)

# A worker past its CPU backstop is ended by the kernel: twice the deadline,
# and a margin for a loaded machine.
_BACKSTOP_MARGIN = 10
STOPPED = "the render worker stopped (killed, out of memory, or stuck past twice " \
          "letters.render_timeout); a new one takes the next document"


@dataclass(frozen=True)
class Limits:
    """What one template may take in a worker: seconds, and address space in bytes."""

    seconds: float
    memory: int
    output: int

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        letters = settings.letters
        return cls(seconds=letters.render_timeout, memory=letters.render_memory_mb << 20,
                   output=letters.render_output_mb << 20)


def confine(limits: Limits) -> None:
    """Limit this process's address space (and write no core file if it is ended).

    Called once in each worker process, never in the daemon itself.
    """
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    soft = limits.memory if hard == resource.RLIM_INFINITY else min(limits.memory, hard)
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))


class _Overtime(BaseException):
    """Raised by the deadline's signal.  Not an ``Exception``: WeasyPrint's and
    pypdf's ``except Exception`` clauses must not swallow it."""


def _overtime(signum: int, frame: FrameType | None) -> None:
    raise _Overtime


def _cpu_backstop(seconds: float | None) -> None:
    """The kernel ends this process (SIGXCPU) past ``seconds`` more CPU time."""
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if seconds is None:
        soft = hard
    else:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        soft = int(usage.ru_utime + usage.ru_stime + 2 * seconds + _BACKSTOP_MARGIN)
        if hard != resource.RLIM_INFINITY:
            soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


@contextmanager
def bounded(limits: Limits | None, template: str) -> Iterator[None]:
    """Render ``template`` within the deadline; a breach is a :class:`RenderError`.

    Only in a process's main thread (where signals are delivered), so in a
    worker; with ``limits`` None, as in tests that use an engine directly,
    nothing is bounded but a ``MemoryError`` is still named.
    """
    armed = limits is not None and threading.current_thread() is threading.main_thread()
    try:
        if armed:
            assert limits is not None
            signal.signal(signal.SIGALRM, _overtime)
            _cpu_backstop(limits.seconds)
            signal.setitimer(signal.ITIMER_REAL, limits.seconds)
        try:
            yield
        finally:
            if armed:
                signal.setitimer(signal.ITIMER_REAL, 0)
                _cpu_backstop(None)
    except _Overtime:
        seconds = limits.seconds if limits else 0
        raise RenderError(f"{template}: rendering took longer than {seconds:g} s "
                          "(letters.render_timeout)") from None
    except MemoryError:
        memory = f" {limits.memory >> 20} MB" if limits else ""
        raise RenderError(f"{template}: rendering needs more memory than the{memory} a "
                          "render worker may use (letters.render_memory_mb)") from None


def check_size(limits: Limits | None, template: str, document: bytes) -> bytes:
    """Refuse a PDF larger than the output cap."""
    if limits is not None and len(document) > limits.output:
        raise RenderError(f"{template}: the PDF is larger than {limits.output >> 20} MB "
                          "(letters.render_output_mb)")
    return document


# --- worker processes --------------------------------------------------------------


def process_context() -> Any:
    """How worker processes start.

    forkserver: workers never inherit the parent's threads (aiosqlite, the
    event loop), and the preloaded server makes each fork cheap.
    """
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["relances.daemon.letters.pdf"])
        return ctx
    return multiprocessing.get_context("spawn")


def exit_with(owner: int) -> None:
    """Exit this worker as soon as process ``owner`` (the daemon) is gone.

    The workers' parent is multiprocessing's fork server, and each worker
    holds the fd that keeps that server alive: when the daemon is killed
    (``kill -9``), neither would ever notice.  A thread waits on a pidfd of
    the daemon, which becomes readable when it exits; it costs no CPU
    while it waits.
    """
    try:
        pidfd = os.pidfd_open(owner)
    except (AttributeError, OSError):  # not Linux ≥ 5.3: look every few seconds
        def watch() -> None:
            while True:
                time.sleep(2)
                try:
                    os.kill(owner, 0)
                except ProcessLookupError:
                    os._exit(1)
    else:
        def watch() -> None:
            select.select([pidfd], [], [])
            os._exit(1)
    threading.Thread(target=watch, name="exit-with-daemon", daemon=True).start()


def init_bounded(limits: Limits, owner: int) -> None:
    """A worker for a single command: dies with its owner, within the limits."""
    exit_with(owner)
    confine(limits)


@contextmanager
def one_worker(initializer: Callable[..., None],
               initargs: tuple[Any, ...]) -> Iterator[ProcessPoolExecutor]:
    """One bounded worker process for a single command, stopped afterwards."""
    pool = ProcessPoolExecutor(max_workers=1, mp_context=process_context(),
                               initializer=initializer, initargs=initargs)
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def result_of(future: Future[Any], template: str) -> Any:
    """A worker's answer; a worker that died is a :class:`RenderError` naming the template."""
    try:
        return future.result()
    except BrokenProcessPool:
        raise RenderError(f"{template}: {STOPPED}") from None
