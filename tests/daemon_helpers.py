"""Running ``relances daemon`` as a process of its own, and reading what it did.

The daemon tests drive the real console script with ``--config``: signals,
``$NOTIFY_SOCKET`` and ``kill -9`` only mean something to a real process.
Ledgers are generated as import files and loaded with the CLI; outcomes are
read back from the database (the outbox, the invoices, the history).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from helpers import Cli, write_settings
from servers import RecordingHandler
from servers import _authenticator as authenticator
from sqlalchemy import Executable, func, select, text

from relances.daemon import storage
from relances.daemon.models import HistoryEntry, Invoice, Reminder

RELANCES = Path(sys.executable).with_name("relances")

INVOICE_HEADER = ("Code\tAffilié\tNom\temail\tDate Fac.\tN° Fac.\tAffect.\tRepr.\tTotal Fac.\t"
                  "Reste\tEchéance\tEch.\tRglmt.\tN-1\tRelancé le\tInfo Réin\tN")
# Imported as they are: never reminded, long overdue, at the level of the last cell.
INVOICE_ROW = ("{code}\t\tCLIENT {n:04d}\t{email}\t01/01/2024\t{number}\t\t\t120,00\t120,00\t"
               "31/01/2024\t\t\t\t\t\t{level}")


def number_of(prefix: str, n: int) -> str:
    return f"{prefix}-F{n:04d}"


def invoices_tsv(path: Path, count: int, *, prefix: str = "K", email: bool = True,
                 level: int = 1) -> Path:
    """``count`` customers with one invoice each, due on 31/01/2024, at ``level``."""
    rows = [INVOICE_ROW.format(code=f"{prefix}{n:04d}", n=n, number=number_of(prefix, n),
                               email=f"compta{n}@client{n}.example" if email else "",
                               level=level or "")
            for n in range(1, count + 1)]
    path.write_text("\n".join([INVOICE_HEADER, *rows]) + "\n", encoding="utf-8")
    return path


# A one-line letter: these tests are about what leaves and what is recorded, and
# the built-in letter costs ten times more to lay out (user templates override
# the built-in ones file by file, as ``letters.templates_dir`` documents).
QUICK_LETTER = ("<p>{{ customer.name }}</p><p>Relance niveau {{ level }} : facture "
                "{{ invoice.number }}, reste {{ invoice.remaining | money }}</p>\n")


def quick_templates(folder: Path) -> Path:
    """A templates folder whose level-1 letter is one short paragraph."""
    for language in ("fr", "en"):
        (folder / language).mkdir(parents=True, exist_ok=True)
        (folder / language / "letter_1.html").write_text(QUICK_LETTER, encoding="utf-8")
    return folder


def daemon_settings(path: Path, database_url: str, level1: list[str],
                    channels: dict[str, Any], *, quick: bool = False,
                    more: dict[str, Any] | None = None, **daemon: Any) -> Path:
    """Settings for a daemon that runs only its catch-up pass and the retries.

    Level 1 uses ``level1``; the schedule is off (null), so whatever the
    daemon does after its start comes from the retries it scheduled itself.
    ``quick``: the one-line letter of :func:`quick_templates`; ``more``: other
    settings, by dotted key.
    """
    levels = {n: {"delay_days": 45, "channels": level1 if n == 1 else ["archive"],
                  "attach_invoice": n == 3, "late_charges": False} for n in (1, 2, 3)}
    values = {"lease_seconds": 10, "retry_base_seconds": 1, "retry_max_seconds": 5,
              "confirm_every_seconds": 1,
              "grace_period": 10, "render_workers": 1, "batch_size": 20, **daemon}
    overrides: dict[str, Any] = {
        "database.url": database_url, "policies.default.levels": levels,
        "channels": {"archive": {"folder": str(path.parent / "letters")}, **channels},
        "schedule.escalate": None, "schedule.dispatch": None,
        **{f"daemon.{key}": value for key, value in values.items()},
    }
    if quick:
        overrides["letters.templates_dir"] = str(quick_templates(path.parent / "templates"))
    return write_settings(path, {**overrides, **(more or {})})


def ledger(settings: Path, tsv: Path) -> Cli:
    """Create the database and import ``tsv``, its customers given a postal address (a
    printed letter needs one); the CLI for later commands."""
    cli = Cli(settings)
    cli("init")
    cli(["import", "invoices", str(tsv)])
    codes = sorted({row.split("\t", 1)[0] for row in tsv.read_text(encoding="utf-8").splitlines()[1:]
                    if row.strip()})
    customers = tsv.with_name(tsv.stem + "-customers.csv")
    customers.write_text("code;address_line1;postal_code;city\n" + "".join(
        f"{code};1 rue de la Paix;75002;Paris\n" for code in codes), encoding="utf-8")
    cli(["import", "customers", str(customers)])
    return cli


def wait_until(condition: Callable[[], Any], timeout: float, what: str,
               interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


# -- the database ---------------------------------------------------------------------


def query(url: str, sql: str | Executable, **params: Any) -> list[tuple[Any, ...]]:
    """Rows of one statement (SQL text or a SQLAlchemy select), read from outside the daemon."""
    statement = text(sql) if isinstance(sql, str) else sql

    async def run() -> list[tuple[Any, ...]]:
        engine = storage.create_engine(url)
        try:
            async with engine.connect() as conn:
                return [tuple(row) for row in await conn.execute(statement, params)]
        finally:
            await engine.dispose()

    return asyncio.run(run())


def states(url: str) -> Counter[str]:
    return Counter(dict(query(url, select(Reminder.state, func.count()).group_by(Reminder.state))))


REMINDER_COLUMNS = (Reminder.state, Reminder.attempts, Reminder.channel_index,
                    Reminder.sent_channel, Reminder.last_error, Reminder.claimed_by,
                    Reminder.reference, Invoice.last_reminded_on, Invoice.last_reminded_level)


def queued(url: str, number: str) -> dict[str, Any] | None:
    """The outbox row of an invoice's letter with the invoice's stamp; None before it is queued."""
    rows = query(url, select(*REMINDER_COLUMNS).join(Invoice, Invoice.id == Reminder.invoice_id)
                 .where(Invoice.number == number))
    if not rows:
        return None
    (row,) = rows
    return {column.key: value for column, value in zip(REMINDER_COLUMNS, row, strict=True)}


def reminder(url: str, number: str) -> dict[str, Any]:
    row = queued(url, number)
    assert row is not None, f"no reminder queued for {number}"
    return row


def retrying(url: str, number: str, attempts: int = 1) -> bool:
    """Whether the letter failed ``attempts`` times and waits for its next try."""
    row = queued(url, number)
    return row is not None and row["state"] == "pending" and row["attempts"] >= attempts


def history(url: str, number: str) -> list[str]:
    """The invoice's history lines, oldest first."""
    return [action for (action,) in query(
        url, select(HistoryEntry.action).join(Invoice, Invoice.id == HistoryEntry.invoice_id)
        .where(Invoice.number == number).order_by(HistoryEntry.id))]


# -- systemd's side of sd_notify ------------------------------------------------------


class NotifySocket:
    """The AF_UNIX datagram socket systemd would listen on, bound in a test folder."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.received: list[list[str]] = []

    def wait_for(self, field: str, timeout: float = 60) -> list[str]:
        """The first datagram (from now on, or already read) holding ``field``."""
        for fields in self.received:
            if field in fields:
                return fields
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                fields = self.sock.recv(4096).decode().split("\n")
            except TimeoutError:
                break
            self.received.append(fields)
            if field in fields:
                return fields
        raise AssertionError(f"no {field} within {timeout:g} s; received {self.received}")

    def drain(self) -> list[list[str]]:
        """Every datagram received so far."""
        self.sock.settimeout(0)
        try:
            while True:
                self.received.append(self.sock.recv(4096).decode().split("\n"))
        except BlockingIOError:
            pass
        return self.received

    def statuses(self) -> list[str]:
        return [f for fields in self.drain() for f in fields if f.startswith("STATUS=")]

    def close(self) -> None:
        self.sock.close()


# -- the daemon process ---------------------------------------------------------------


class Daemon:
    """``relances daemon`` in a process of its own, its stderr kept in a file."""

    def __init__(self, settings: Path, log: Path, *, once: bool = False,
                 notify: NotifySocket | None = None, user: str = "daemon") -> None:
        env = dict(os.environ)
        env.pop("NOTIFY_SOCKET", None)
        env.pop("JOURNAL_STREAM", None)
        if notify is not None:
            env["NOTIFY_SOCKET"] = str(notify.path)
        self.log_path = log
        self._log = log.open("ab")
        argv = [str(RELANCES), "--config", str(settings), "--user", user, "daemon"]
        # A session of its own: the render workers it forks stay in its
        # process group, so what a kill -9 orphans can be found and reaped.
        self.process = subprocess.Popen(argv + (["--once"] if once else []), env=env,
                                        stdin=subprocess.DEVNULL, stdout=self._log,
                                        stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_for_log(self, text: str, timeout: float = 60) -> None:
        def seen() -> bool:
            if text in self.log:
                return True
            if self.process.poll() is not None:
                raise AssertionError(f"the daemon exited ({self.process.returncode}) before "
                                     f"logging {text!r}:\n{self.log}")
            return False

        wait_until(seen, timeout, f"{text!r} in the daemon's log", interval=0.1)

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the daemon did not exit within {timeout:g} s:\n"
                                 f"{self.log}") from None

    def kill(self) -> None:
        """``kill -9`` the daemon, then what it left behind (its render workers)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)
        self._kill_group()
        self._log.close()

    def _kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def group_alive(self) -> bool:
        """Whether any process of the daemon's group (its workers) is still there."""
        try:
            os.killpg(self.process.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, then wait for it to exit; its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.wait(timeout)
        finally:
            self._log.close()

    def __enter__(self) -> Daemon:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)
        self._kill_group()
        self._log.close()


def stop_all(daemons: Iterable[Daemon]) -> None:
    for daemon in daemons:
        daemon.__exit__()


# -- an SMTP server that can go down and come back ----------------------------------


def smtp_controller(handler: RecordingHandler, port: int,
                    tls_files: tuple[Path, Path]) -> Controller:
    """aiosmtpd on 127.0.0.1:``port`` with STARTTLS and AUTH, as ``smtp_server`` runs it."""
    cert, key = tls_files
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    controller = Controller(handler, hostname="127.0.0.1", port=port,
                            authenticator=authenticator, auth_required=True,
                            tls_context=context, require_starttls=True)
    controller.start()
    return controller


def message_ids(messages: Iterable[Any]) -> Counter[str]:
    """How many messages arrived per Message-ID (one Message-ID per reminder key)."""
    return Counter(str(m.message["Message-ID"]).strip() for m in messages)
