"""The drop folder (``imports.inbox``): files of the books imported as they arrive.

The daemon looks at the folder every ``imports.poll_seconds``.  A file is
read only once it is whole: its size and modification time have not
changed since the previous look (a ``*.part`` file, or a hidden one, is
never read: rename it when it is written).  Its kind comes from its content
(a bank statement, :mod:`relances.daemon.bank.read`; else a file of the
books or a platform's CDAR status, :mod:`relances.daemon.ledger.sources`) and it is imported with that
source's settings, in one transaction; a statement is never "complete".  Then it moves to ``done/``, its
name prefixed with the time; a refused file moves to ``failed/`` with a
``.error.txt`` beside it holding the one-line reason.  Every import is a
run of ``relances status``: ``import:<source>`` with its counts.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from relances.daemon.bank.apply import import_statement
from relances.daemon.bank.read import read_statement, statement_format
from relances.daemon.errors import LedgerError, RelancesError
from relances.daemon.ledger import infiles
from relances.daemon.ledger.imports import import_any, import_run
from relances.daemon.ledger.sources import source_of
from relances.daemon.models import utcnow
from relances.daemon.storage import App

log = logging.getLogger(__name__)

DONE, FAILED = "done", "failed"
HEAD = 64 * 1024  # enough of a file to tell what it is


@dataclass(frozen=True)
class Outcome:
    path: Path  # where the file went
    source: str | None
    summary: str
    ok: bool


def _source(path: Path) -> str:
    """``bank`` for a statement, else the books' source (LedgerError when neither)."""
    try:
        with infiles.open_binary(path) as stream:
            head = stream.read(HEAD)
    except (OSError, LedgerError):
        head = b""  # source_of says what is wrong
    return "bank" if statement_format(head) else source_of(path)


class Inbox:
    """One watched folder; :meth:`look` imports what has become whole since the last look."""

    def __init__(self, app: App, folder: Path) -> None:
        self.app = app
        self.folder = folder
        self.seen: dict[Path, tuple[int, int]] = {}

    def _candidates(self) -> list[Path]:
        try:
            entries = sorted(self.folder.iterdir())
        except FileNotFoundError:
            return []
        return [p for p in entries
                if not p.name.startswith(".") and not p.name.endswith(".part")
                and p.is_file() and not p.is_symlink()]

    def ready(self) -> list[Path]:
        """Files unchanged since the previous look (size and modification time)."""
        ready, seen = [], {}
        for path in self._candidates():
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            seen[path] = (stat.st_size, stat.st_mtime_ns)
            if self.seen.get(path) == seen[path]:
                ready.append(path)
        self.seen = seen
        return ready

    async def look(self) -> list[Outcome]:
        """Import every file that is whole; the others wait for the next look."""
        outcomes = []
        for path in self.ready():
            outcomes.append(await self.import_one(path))
            self.seen.pop(path, None)
        return outcomes

    async def import_one(self, path: Path) -> Outcome:
        started = utcnow()
        source: str | None = None
        try:
            with infiles.size_limit(self.app.settings.imports.max_file_mb):
                source = _source(path)
                async with self.app.sessions.begin() as session:
                    if source == "bank":
                        result = await import_statement(session, self.app.settings,
                                                        read_statement(path), user=self.app.user)
                        summary = str(result)
                    else:
                        summary = await import_any(session, path, source,
                                                   settings=self.app.settings, user=self.app.user)
        except RelancesError as exc:
            reason = str(exc)
            moved = self._move(path, FAILED, started)
            moved.with_name(moved.name + ".error.txt").write_text(reason + "\n", encoding="utf-8")
            log.error("inbox: %s refused: %s", path.name, reason)
            await self._record(source, f"{path.name}: refused: {reason}", started, ok=False)
            return Outcome(moved, source, reason, False)
        moved = self._move(path, DONE, started)
        log.info("inbox: %s imported as %s: %s", path.name, source, summary)
        await self._record(source, f"{path.name}: {summary}", started, ok=True)
        return Outcome(moved, source, summary, True)

    def _move(self, path: Path, where: str, started: dt.datetime) -> Path:
        folder = self.folder / where
        folder.mkdir(exist_ok=True)
        stamp = started.astimezone(self.app.settings.zone).strftime("%Y%m%dT%H%M%S")
        target = folder / f"{stamp}_{path.name}"
        n = 1
        while target.exists():
            n += 1
            target = folder / f"{stamp}-{n}_{path.name}"
        os.replace(path, target)
        return target

    async def _record(self, source: str | None, summary: str, started: dt.datetime, *,
                      ok: bool) -> None:
        async with self.app.sessions.begin() as session:
            session.add(import_run(source=source, user=self.app.user, started=started,
                                   summary=summary, ok=ok))
