"""Helpers shared by the benchmarks: the fair WeasyPrint baseline, a counting SMTP
server, CPU and memory of process trees."""

from __future__ import annotations

import multiprocessing
import os
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from types import TracebackType
from typing import Any

from weasyprint import CSS, HTML
from weasyprint.text.fonts import FontConfiguration

from relances.daemon.config import Settings
from relances.daemon.letters.fetcher import STYLE_MARK
from relances.daemon.letters.job import LetterJob
from relances.daemon.letters.pdf import PdfEngine

TICKS = os.sysconf("SC_CLK_TCK")


# -- /proc ------------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str]:
    # The command name may hold spaces and parentheses: split after the last ")".
    text = Path(f"/proc/{pid}/stat").read_text()
    return text.rsplit(")", 1)[1].split()


def cpu_seconds(pid: int, *, reaped_children: bool = True) -> float:
    """User + system CPU of ``pid`` (and of its children it has reaped); 0 if it is gone."""
    try:
        fields = _stat_fields(pid)
    except OSError:
        return 0.0
    # Fields from the state on: utime, stime, cutime, cstime are 12..15.
    ticks = int(fields[11]) + int(fields[12])
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / TICKS


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (children, grandchildren, ...)."""
    parent_of: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent_of[int(entry.name)] = int(_stat_fields(int(entry.name))[1])
            except (OSError, IndexError, ValueError):
                continue
    found: list[int] = []
    frontier = [pid]
    while frontier:
        current = frontier.pop()
        children = [p for p, parent in parent_of.items() if parent == current]
        found.extend(children)
        frontier.extend(children)
    return found


def tree_cpu_seconds(pid: int, *, exclude: tuple[int, ...] = ()) -> float:
    """CPU of ``pid`` and everything below it, the reaped included.

    A worker that exited was reaped by its live parent, whose ``cutime``
    holds it; a live process's ``cutime`` holds only the dead, so nothing
    is counted twice.
    """
    skipped = set(exclude)
    for excluded in exclude:
        skipped.update(descendants(excluded))
    pids = [pid, *(p for p in descendants(pid) if p not in skipped)]
    return sum(cpu_seconds(p) for p in pids)


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class PeakMemory(threading.Thread):
    """Peak of the summed resident memory of this process and the given pids, sampled."""

    def __init__(self, pids: Any, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pids = pids  # a callable: the pids change when the pool replaces a worker
        self.interval = interval
        self.peak_kib = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        total = sum(rss_kib(p) for p in (os.getpid(), *self.pids()))
        self.peak_kib = max(self.peak_kib, total)

    def stop(self) -> int:
        self.done.set()
        self.join()
        self.sample()
        return self.peak_kib


# -- the baseline: the best WeasyPrint loop a user could write by hand ---------------


@dataclass
class Bare:
    letters: int
    seconds: float
    cpu_seconds: float

    @property
    def rate(self) -> float:
        return self.letters / self.seconds

    def __add__(self, other: Bare) -> Bare:
        """Two runs of the loop as one (the halves before and after the path)."""
        return Bare(self.letters + other.letters, self.seconds + other.seconds,
                    self.cpu_seconds + other.cpu_seconds)


_STYLE = re.compile(rf"<style {STYLE_MARK}>\n(.*?)</style>\n", re.S)


def letter_html(settings: Settings, job: LetterJob) -> tuple[str, str]:
    """(HTML, stylesheet) of the letter: what ``relances preview --html`` writes, its
    inlined stylesheet taken out to be parsed once."""
    html = PdfEngine(settings).standalone_html(job.language, job.template, job.context)
    match = _STYLE.search(html)
    assert match is not None, "preview --html inlines the stylesheet"
    return html[:match.start()] + html[match.end():], match.group(1)


def bare_loop(settings: Settings, job: LetterJob, count: int) -> Bare:
    """The fair baseline: its time and its CPU for ``count`` letters.

    One process; one ``FontConfiguration``; the stylesheet parsed once; one
    image cache; the same self-contained HTML (``relances preview --html``)
    laid out each time by ``HTML(string=...).write_pdf()``.  No templating,
    no database, no merging, no worker: the least WeasyPrint work a letter
    needs, which nobody writing the loop by hand could avoid.
    """
    html, stylesheet = letter_html(settings, job)
    fonts = FontConfiguration()
    css = CSS(string=stylesheet, font_config=fonts)
    images: dict[str, Any] = {}

    def one() -> bytes:
        pdf: bytes = HTML(string=html).write_pdf(stylesheets=[css], font_config=fonts,
                                                  cache=images)
        return pdf

    assert one().startswith(b"%PDF")  # fonts and images loaded, as in a warm worker
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(count):
        one()
    return Bare(count, time.perf_counter() - start, time.process_time() - cpu)


# -- a counting SMTP server in a process of its own -------------------------------------


@dataclass
class SmtpCounts:
    messages: int = 0
    with_pdf: int = 0
    recipients: set[str] = field(default_factory=set)
    octets: int = 0


class _CountingHandler:
    """Accepts every message and counts it; parses nothing, so it costs little CPU."""

    def __init__(self) -> None:
        self.counts = SmtpCounts()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content: bytes = envelope.original_content or b""
        self.counts.messages += 1
        self.counts.with_pdf += b"application/pdf" in content
        self.counts.recipients.update(envelope.rcpt_tos)
        self.counts.octets += len(content)
        return "250 Message accepted"


def _serve_smtp(port: int, conn: Connection) -> None:
    from aiosmtpd.controller import Controller

    handler = _CountingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=port, ready_timeout=60)
    controller.start()
    conn.send("ready")
    try:
        while (command := conn.recv()) != "stop":
            if command == "counts":
                conn.send(handler.counts)
    finally:
        controller.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class SmtpSink:
    """aiosmtpd on 127.0.0.1 (no TLS, no AUTH) in a spawned process.

    A process, not a thread: a thread would take the GIL from the event
    loop being measured, where a real mail server is another program.
    """

    def __init__(self) -> None:
        self.port = free_port()
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_serve_smtp, args=(self.port, child), daemon=True)

    def __enter__(self) -> SmtpSink:
        self.process.start()
        if not self._conn.poll(120) or self._conn.recv() != "ready":
            raise RuntimeError("the SMTP server did not start")
        return self

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    def counts(self) -> SmtpCounts:
        self._conn.send("counts")
        counts: SmtpCounts = self._conn.recv()
        return counts

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._conn.send("stop")
        self.process.join(30)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
