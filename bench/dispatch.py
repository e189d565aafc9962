"""The whole sending path: escalate, render, email, stamp; idle CPU; memory.

Builds a SQLite ledger of ``--count`` customers, each with an email address
and one overdue invoice at level 0, then times, in this one process, what
the daemon's two jobs do: ``escalate_job`` (to level 1) and
``dispatch_job`` (queue, the real ``Dispatcher`` with a real ``Renderer``
pool and the real email channel, stamping).  The mail goes to a local
aiosmtpd server (security ``none``) in a process of its own.  It prints
reminders per second and the ratio to the fair baseline of
``_common.bare_loop`` (one process, one font configuration, the stylesheet
parsed once, the letter's HTML as ``relances preview --html`` writes it)
over the same letter in the same run, then checks that every message arrived and every invoice
was stamped (exit 1 if not: a correctness check, not a timing one).

Then it starts ``relances daemon`` on that database, with a schedule that
has nothing due for hours, waits for its start-up catch-up to finish, and
prints the CPU it uses over ``--idle-seconds`` (the daemon, its render
workers and every other process below it).

With ``--big`` it runs the whole path again on 10 x ``--count`` reminders
and prints the peak resident memory (this process and its render workers)
of both runs and their ratio.  It ends with one line per figure,
``dispatch: ratio R`` (and ``dispatch memory: ratio R``).  Nothing here
asserts on time.

    .venv/bin/python bench/dispatch.py                      # 2,000 reminders, 60 s idle
    .venv/bin/python bench/dispatch.py --big                # and 20,000 for memory
    .venv/bin/python bench/dispatch.py --count 300 --baseline 50 --idle-seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import weasyprint
import yaml
from _common import (
    Bare,
    PeakMemory,
    SmtpCounts,
    SmtpSink,
    bare_loop,
    cpu_seconds,
    descendants,
    tree_cpu_seconds,
)
from _lines import ratio_line

from relances.daemon import storage
from relances.daemon.config import Settings, load_settings
from relances.daemon.letters.documents import LetterJob, prepare_letter
from relances.daemon.letters.pool import Renderer, harfbuzz_subset_available
from relances.daemon.service.jobs import dispatch_job, escalate_job
from relances.daemon.storage import App

ROOT = Path(__file__).resolve().parent.parent
RELANCES = Path(sys.executable).with_name("relances")
OVERDUE_DAYS = 60  # past level 1's 45 days, short of anything else

log = logging.getLogger("bench.dispatch")


# -- the ledger and its settings --------------------------------------------------------


def write_settings(folder: Path, smtp_port: int, schedule: dict[str, str | None]) -> Path:
    """The project's settings.yaml, sending level 1 by email to the local server."""
    data: dict[str, Any] = yaml.safe_load((ROOT / "settings.yaml").read_text(encoding="utf-8"))
    data["data_dir"] = str(folder / "data")
    data["database"]["url"] = f"sqlite+aiosqlite:///{folder / 'relances.db'}"
    for level in data["policies"]["default"]["levels"].values():
        level["channels"] = ["email"]
    data["channels"]["email"] = {"host": "127.0.0.1", "port": smtp_port, "security": "none",
                                 "from_address": "relances@entreprise.example",
                                 "from_name": "Service comptable", "timeout": 30}
    data["schedule"] = schedule
    path = folder / "settings.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def fill(db_path: Path, count: int, today: dt.date, first: int = 1) -> None:
    """``count`` customers with an email address, one invoice each, overdue at level 0."""
    now = dt.datetime.now(dt.UTC).isoformat(sep=" ")
    due = (today - dt.timedelta(days=OVERDUE_DAYS)).isoformat()
    issued = (today - dt.timedelta(days=OVERDUE_DAYS + 30)).isoformat()
    db = sqlite3.connect(db_path)
    db.executemany(
        "INSERT INTO customers (id, code, name, email, address_line1, postal_code, city, "
        "country, language, kind, opted_out, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, '69002', 'Lyon', 'France', 'fr', 'business', 0, ?, ?)",
        ((i, f"C{i:06d}", f"Client {i} SARL", f"compta{i}@client{i}.example",
          f"{i} rue de la République", now, now) for i in range(first, first + count)))
    db.executemany(
        "INSERT INTO invoices (id, number, customer_id, invoice_date, due_date, total, "
        "remaining, payment_method, level, on_hold, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, 'Virement', 0, 0, ?, ?)",
        ((i, f"F{i:08d}", i, issued, due, 12_345 + i, 12_345 + i, now, now)
         for i in range(first, first + count)))
    db.commit()
    db.close()


def stamped(db_path: Path, today: dt.date) -> int:
    db = sqlite3.connect(db_path)
    try:
        (n,) = db.execute("SELECT count(*) FROM invoices WHERE level = 1 AND last_reminded_level = 1 "
                          "AND last_reminded_on = ?", (today.isoformat(),)).fetchone()
    finally:
        db.close()
    return int(n)


# -- the baseline's letter ------------------------------------------------------------


async def first_letter(app: App) -> LetterJob:
    """The level-1 letter of the first invoice, as dispatch will prepare it."""
    async with app.sessions() as session:
        return await prepare_letter(session, app.settings, "F00000001", level=1,
                                    as_of=app.settings.today())


# -- the whole path --------------------------------------------------------------------


@dataclass
class PathRun:
    count: int
    rate: float  # reminders per second, escalation to the last stamp
    escalate_s: float
    dispatch_s: float
    sent: int
    stamped: int
    smtp: SmtpCounts
    peak_kib: int
    cpu_self_s: float  # this process (event loop, SQLite, SMTP client)
    cpu_workers_s: float  # the render pool and the processes below it
    cpu_smtp_s: float
    job: LetterJob


async def whole_path(folder: Path, count: int, baseline: int | None,
                     workers: int | None) -> tuple[PathRun, Bare | None, Path]:
    """Fill, (measure the baseline,) escalate and dispatch ``count`` reminders."""
    with SmtpSink() as smtp:
        settings_path = write_settings(folder, smtp.port, {"escalate": None, "dispatch": None})
        settings = load_settings(settings_path)
        app = App(settings=settings, user="bench")
        await storage.upgrade(app.engine)
        db_path = folder / "relances.db"
        fill(db_path, count, settings.today())
        job = await first_letter(app)
        bare = bare_loop(settings, job, baseline) if baseline else None

        async with Renderer(settings, workers=workers) as renderer:
            # Start and warm every worker outside the timing, as a running daemon has.
            await asyncio.gather(*(renderer.render(job) for _ in range(renderer.workers)))
            memory = PeakMemory(lambda: renderer.worker_pids)
            memory.start()
            self_before = cpu_seconds(os.getpid(), reaped_children=False)
            tree_before = tree_cpu_seconds(os.getpid(), exclude=(smtp.pid,))
            smtp_before = cpu_seconds(smtp.pid)
            started = time.perf_counter()
            escalation = await escalate_job(app)
            escalated = time.perf_counter()
            run = await dispatch_job(app, renderer, worker=f"{socket.gethostname()}:bench")
            finished = time.perf_counter()
            cpu_self = cpu_seconds(os.getpid(), reaped_children=False) - self_before
            cpu_tree = tree_cpu_seconds(os.getpid(), exclude=(smtp.pid,)) - tree_before
            cpu_smtp = cpu_seconds(smtp.pid) - smtp_before
            peak = memory.stop()
        await app.close()
        assert escalation is not None
        counts = smtp.counts()
    result = PathRun(
        count=count, rate=count / (finished - started), escalate_s=escalated - started,
        dispatch_s=finished - escalated, sent=sum(run.summary.sent.values()),
        stamped=stamped(db_path, settings.today()), smtp=counts, peak_kib=peak,
        cpu_self_s=cpu_self, cpu_workers_s=cpu_tree - cpu_self, cpu_smtp_s=cpu_smtp, job=job)
    return result, bare, settings_path


def report_path(run: PathRun, out: Any) -> bool:
    """Print one run's figures; True when every reminder arrived and was stamped."""
    out(f"whole path, {run.count} reminders: {run.rate:.1f} reminders/s "
        f"(escalate {run.escalate_s:.2f} s, queue+render+send+stamp {run.dispatch_s:.1f} s)\n")
    per = 1000 / run.count
    out(f"  CPU per 1,000 reminders: daemon process {run.cpu_self_s * per:.1f} s, "
        f"render workers {run.cpu_workers_s * per:.1f} s, SMTP server {run.cpu_smtp_s * per:.1f} s\n")
    out(f"  sent {run.sent}; SMTP server received {run.smtp.messages} messages "
        f"({run.smtp.with_pdf} with a PDF, {len(run.smtp.recipients)} distinct recipients, "
        f"{run.smtp.octets / run.count / 1024:.0f} KiB each); invoices stamped {run.stamped}\n")
    ok = (run.sent == run.smtp.messages == run.smtp.with_pdf == len(run.smtp.recipients)
          == run.stamped == run.count)
    if not ok:
        out(f"  MISMATCH: expected {run.count} of each\n")
    return ok


# -- the idle daemon -------------------------------------------------------------------


def quiet_schedule(settings: Settings) -> dict[str, str | None]:
    """Cron lines for a time hours away, so no job falls due while we watch."""
    later = dt.datetime.now(settings.zone) + dt.timedelta(hours=3)
    return {"escalate": f"{later.minute} {later.hour} * * *",
            "dispatch": f"{(later.minute + 5) % 60} {later.hour} * * *"}


def wait_for_status(sock: socket.socket, prefix: str, timeout: float,
                    daemon: subprocess.Popen[bytes]) -> str:
    """The first ``sd_notify`` field the daemon sends that starts with ``prefix``."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        if daemon.poll() is not None:
            raise RuntimeError(f"the daemon exited with {daemon.returncode}")
        sock.settimeout(min(left, 1.0))
        try:
            fields = sock.recv(4096).decode().split("\n")
        except TimeoutError:
            continue
        for field in fields:
            if field.startswith(prefix):
                return field
    raise RuntimeError(f"no {prefix!r} from the daemon within {timeout:g} s")


def wait_until_quiet(sock: socket.socket, quiet: float) -> None:
    """Read notifications until none has come for ``quiet`` seconds."""
    sock.settimeout(quiet)
    try:
        while True:
            sock.recv(4096)
    except TimeoutError:
        pass


def _name(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    words = [w.decode(errors="replace") for w in argv if w]
    # multiprocessing helpers run "python -c 'from multiprocessing.forkserver import main...'"
    for word in words:
        for helper in ("forkserver", "resource_tracker", "spawn_main"):
            if helper in word:
                # A render worker is forked by the forkserver and keeps its command line.
                try:
                    parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
                except OSError:
                    return helper
                if helper == "forkserver" and _name(parent) == "forkserver":
                    return "render worker"
                return helper
    if len(words) > 1 and Path(words[1]).name == "relances":
        return "relances daemon"  # the console script, run by the interpreter
    return Path(words[0]).name if words else "?"


def idle_cpu(folder: Path, settings_path: Path, seconds: float, out: Any) -> None:
    """CPU of ``relances daemon`` and everything below it over ``seconds`` of idling.

    A few invoices fall due just before the start, so that the daemon's
    catch-up sends them and its render workers are up while it idles, as
    between two runs of a working day.
    """
    settings = load_settings(settings_path)
    with SmtpSink() as smtp:
        data = yaml.safe_load(settings_path.read_text(encoding="utf-8"))
        data["schedule"] = quiet_schedule(settings)
        data["channels"]["email"]["port"] = smtp.port
        settings_path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        db_path = folder / "relances.db"
        with sqlite3.connect(db_path) as db:
            (last,) = db.execute("SELECT max(id) FROM invoices").fetchone()
        db.close()
        fresh = 2 * (os.cpu_count() or 1)
        fill(db_path, fresh, settings.today(), first=last + 1)
        notify_path = folder / "notify.sock"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(notify_path))
        env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
        env["NOTIFY_SOCKET"] = str(notify_path)
        log_path = folder / "daemon.log"
        with log_path.open("wb") as log_file:
            daemon = subprocess.Popen(
                [str(RELANCES), "--config", str(settings_path), "--user", "bench", "daemon"],
                env=env, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                start_new_session=True)
        try:
            wait_for_status(sock, "READY=1", 300, daemon)
            # The catch-up: escalation, dispatch, and the dispatch escalation asks for.
            status = wait_for_status(sock, f"STATUS=idle; last dispatch: {fresh} queued", 600,
                                     daemon)
            wait_until_quiet(sock, 5)
            before = tree_cpu_seconds(daemon.pid)
            names = [_name(p) for p in (daemon.pid, *descendants(daemon.pid))]
            started = time.perf_counter()
            time.sleep(seconds)
            used = tree_cpu_seconds(daemon.pid) - before
            elapsed = time.perf_counter() - started
            arrived = smtp.counts().messages
        except RuntimeError as exc:
            out(f"idle daemon: {exc}; its log:\n{log_path.read_text(errors='replace')}\n")
            raise SystemExit(1) from None
        finally:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(90)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
            sock.close()
    out(f"idle daemon: catch-up {status.removeprefix('STATUS=idle; last ')}; "
        f"{arrived} arrived\n")
    out(f"idle daemon over {elapsed:.0f} s, {len(names)} processes ({', '.join(names)}): "
        f"{used:.2f} s CPU = {100 * used / elapsed:.2f} % of one core (goal: near zero)\n")


# -- main ------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--baseline", type=int, default=200,
                        help="letters for the single-process loop (its rate is what matters)")
    parser.add_argument("--workers", type=int, default=None, help="render workers (default: cores)")
    parser.add_argument("--idle-seconds", type=float, default=60.0,
                        help="how long to watch the idle daemon; 0 skips it")
    parser.add_argument("--big", action="store_true",
                        help="also run 10 x --count reminders and compare peak memory")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    out = sys.stdout.write

    out(f"cores: {os.cpu_count()}  weasyprint {weasyprint.__version__}  "
        f"harfbuzz-subset: {'yes' if harfbuzz_subset_available() else 'NO (slow)'}\n")
    ok = True
    with tempfile.TemporaryDirectory(prefix="relances-bench-") as tmp:
        folder = Path(tmp) / "run"
        folder.mkdir()
        half = max(1, args.baseline // 2)
        run, before, settings_path = asyncio.run(
            whole_path(folder, args.count, half, args.workers))
        assert before is not None
        # Half the baseline before the path and half after: on a machine
        # shared with other work, the two halves bracket the path's load.
        after = bare_loop(load_settings(settings_path), run.job, max(1, args.baseline - half))
        bare = before + after
        out(f"fair baseline (1 process, one FontConfiguration, stylesheet parsed once, the "
            f"HTML of `preview --html`): {bare.rate:.1f} letters/s ({bare.letters} letters of "
            f"{run.job.template}; {before.rate:.1f} before the path, {after.rate:.1f} after)\n")
        ok &= report_path(run, out)
        # Other processes steal wall time, not CPU time: this estimate of the
        # ratio on idle cores holds better on a busy machine.
        cores = os.cpu_count() or 1
        path_cpu = (run.cpu_self_s + run.cpu_workers_s) / run.count
        bare_cpu = bare.cpu_seconds / bare.letters
        out(f"CPU per letter: baseline {1000 * bare_cpu:.0f} ms; whole path {1000 * path_cpu:.0f} ms "
            f"(daemon + render workers); on {cores} idle cores the ratio would be about "
            f"{cores * bare_cpu / path_cpu:.2f}\n")
        out(f"peak RSS this process + render workers, {run.count} reminders: "
            f"{run.peak_kib / 1024:.0f} MiB\n")
        sys.stdout.flush()
        if args.idle_seconds > 0:
            idle_cpu(folder, settings_path, args.idle_seconds, out)
            sys.stdout.flush()
        memory = None
        if args.big:
            big_folder = Path(tmp) / "big"
            big_folder.mkdir()
            big, _, _ = asyncio.run(whole_path(big_folder, 10 * args.count, None, args.workers))
            ok &= report_path(big, out)
            memory = big.peak_kib / run.peak_kib
            out(f"peak RSS this process + render workers: {run.count} reminders "
                f"{run.peak_kib / 1024:.0f} MiB, {big.count} reminders {big.peak_kib / 1024:.0f} "
                "MiB; flat is a ratio of about 1.0\n")
        out(f"goals on 2 cores: dispatch >= 1.4{'; dispatch memory <= 1.2' if args.big else ''}\n")
        out(ratio_line("dispatch", run.rate / bare.rate))
        if memory is not None:
            out(ratio_line("dispatch memory", memory))
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
