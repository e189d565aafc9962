"""Logging for the service: stderr, with journald priorities under systemd.

Under systemd, stderr is a stream into the journal.  A line that starts
with ``<N>`` gets priority N (sd-daemon(3)); the journal stamps the time
itself, so none is written.  Anywhere else a person reads the lines, so
they carry the time and the level's name.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import TextIO

JOURNAL_STREAM_ENV = "JOURNAL_STREAM"
HUMAN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
HUMAN_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
JOURNAL_FORMAT = "%(name)s: %(message)s"

# sd-daemon(3) priorities: SD_CRIT, SD_ERR, SD_WARNING, SD_INFO, SD_DEBUG.
_PRIORITIES = ((logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6))
_DEBUG_PRIORITY = 7


def journal_priority(levelno: int) -> int:
    """The syslog priority of a logging level (NOTICE, 5, has no logging level)."""
    for threshold, priority in _PRIORITIES:
        if levelno >= threshold:
            return priority
    return _DEBUG_PRIORITY


class JournalFormatter(logging.Formatter):
    """Prefixes every line of a record with its priority.

    Every line, not only the first: journald splits the stream at newlines,
    and a traceback's lines would otherwise be logged at the default
    priority, away from the error they explain.
    """

    def __init__(self, fmt: str = JOURNAL_FORMAT) -> None:
        super().__init__(fmt)

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{journal_priority(record.levelno)}>"
        return "\n".join(prefix + line for line in super().format(record).split("\n"))


def stream_is_journal(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``stream`` is the journal stream systemd connected.

    systemd puts the stream's ``device:inode`` in ``$JOURNAL_STREAM``; the
    variable alone is not enough, since children inherit it while their
    stderr may have been sent elsewhere (sd-daemon(3) asks for this check).
    """
    value = (os.environ if environ is None else environ).get(JOURNAL_STREAM_ENV, "")
    device, _, inode = value.partition(":")
    try:
        expected = (int(device), int(inode))
        stat = os.fstat(stream.fileno())
    except (ValueError, OSError, AttributeError):
        return False
    return (stat.st_dev, stat.st_ino) == expected


def _level(level: int | str) -> int:
    if isinstance(level, int):
        return level
    value = logging.getLevelName(level.upper())
    if not isinstance(value, int):
        raise ValueError(f"unknown log level {level!r}")
    return value


def _replaceable(handler: logging.Handler) -> bool:
    # Ours from an earlier call, or the plain stderr handler of basicConfig;
    # test-capture handlers and anything an embedding program added stay.
    if getattr(handler, "_relances", False):
        return True
    return (type(handler) is logging.StreamHandler
            and handler.stream in (sys.stderr, sys.__stderr__))


def configure_logging(
    level: int | str = logging.INFO,
    *,
    journald: bool | None = None,
    stream: TextIO | None = None,
) -> logging.Handler:
    """Send the root logger's records at ``level`` and above to stderr.

    ``journald``: True for priority prefixes and no time, False for the
    human format, None to decide from ``$JOURNAL_STREAM`` (it must name
    ``stream``).  ``stream`` defaults to ``sys.stderr``.  Calling it again
    (on reload) replaces the handler it installed.  Returns the handler.
    """
    target = stream if stream is not None else sys.stderr
    if journald is None:
        journald = stream_is_journal(target)
    handler = logging.StreamHandler(target)
    handler._relances = True  # type: ignore[attr-defined]
    if journald:
        handler.setFormatter(JournalFormatter())
    else:
        handler.setFormatter(logging.Formatter(HUMAN_FORMAT, HUMAN_DATE_FORMAT))
    root = logging.getLogger()
    for old in [h for h in root.handlers if _replaceable(h)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(_level(level))
    return handler
