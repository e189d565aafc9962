"""What an SMTP server accepted, written down the moment it said so.

An SMTP server cannot be asked afterwards whether it took a message.  The
email channels write each accepted Message-ID here before they return
their receipt, so that after a crash between the server's "250" and the
dispatcher's commit, :meth:`relances.plugins.Channel.find` knows the
message left and it is not sent a second time.  A write is one append
(atomic for a line this short, whichever process writes); it reaches the
file system at once, so a killed process loses nothing, though a power
cut may lose the last lines, which then cost a duplicate with the same
Message-ID, as without the journal.

The file is ``<data_dir>/<channel>-accepted.tsv``, one line per message:
Message-ID, the reminder's key, when (UTC).  At :data:`ROTATE_BYTES` it
is renamed ``.1`` (the previous ``.1`` is dropped): only the last
messages matter, those a crash may have left unrecorded.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from pathlib import Path
from typing import BinaryIO

logger = logging.getLogger(__name__)

ROTATE_BYTES = 4 * 1024 * 1024


class AcceptedJournal:
    """The accepted Message-IDs of one channel, read incrementally."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._known: set[str] = set()
        self._read: tuple[int, int] | None = None  # (inode, offset) of what is in _known

    def record(self, message_id: str, key: str) -> None:
        """Write one accepted message down; a failure to write is logged, never raised:
        the message has left, and the dispatcher must still record it."""
        line = f"{message_id}\t{key}\t{dt.datetime.now(dt.UTC):%Y-%m-%dT%H:%M:%SZ}\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
            try:
                os.write(fd, line.encode("utf-8"))
                size = os.fstat(fd).st_size
            finally:
                os.close(fd)
            if size > ROTATE_BYTES:
                os.replace(self.path, self.path.with_name(self.path.name + ".1"))
        except OSError as exc:
            logger.warning("cannot write %s to %s: %s", message_id, self.path, exc)
        self._known.add(message_id)

    def holds(self, message_id: str) -> bool:
        """Whether ``message_id`` was accepted, by this process or another."""
        if message_id in self._known:
            return True
        self._catch_up()
        return message_id in self._known

    def _catch_up(self) -> None:
        rotated = self.path.with_name(self.path.name + ".1")
        try:
            with self.path.open("rb") as handle:
                inode = os.fstat(handle.fileno()).st_ino
                if self._read is None or self._read[0] != inode:
                    # First look, or the file was rotated: the old one holds the rest.
                    self._known |= self._ids(rotated, 0)[0]
                    offset = 0
                else:
                    offset = self._read[1]
                ids, end = self._ids_from(handle, offset)
                self._known |= ids
                self._read = (inode, end)
        except FileNotFoundError:  # nothing yet, or just rotated
            self._known |= self._ids(rotated, 0)[0]
            self._read = None
        except OSError as exc:
            logger.warning("cannot read %s: %s", self.path, exc)

    @classmethod
    def _ids(cls, path: Path, offset: int) -> tuple[set[str], int]:
        try:
            with path.open("rb") as handle:
                return cls._ids_from(handle, offset)
        except OSError:
            return set(), 0

    @staticmethod
    def _ids_from(handle: BinaryIO, offset: int) -> tuple[set[str], int]:
        handle.seek(offset)
        data = handle.read()
        complete = data.rfind(b"\n") + 1  # a line still being written is read next time
        ids = {line.split(b"\t", 1)[0].decode("utf-8", "replace")
               for line in data[:complete].splitlines() if line}
        return ids, offset + complete
