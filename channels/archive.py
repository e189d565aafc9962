"""The ``archive`` channel: each PDF written into a folder.

The quick start's default channel: it needs no option.  ``folder``
(default ``<data_dir>/letters``) is where files go; ``timezone`` (default
``Europe/Paris``) dates their names.  A file is named so a person can find
it by date, customer, invoice and level::

    2024-11-22_INT01_COD_F1026_relance-1.pdf     one invoice's letter
    2024-11-22_INT01_releve-2.pdf                a customer's statement
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import errno
import logging
import os
import re
import stat
import tempfile
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from relances.channels._options import Options
from relances.plugins import (
    Channel,
    ChannelConfigError,
    ChannelSettings,
    Delivery,
    DeliveryError,
    Receipt,
    RegisterChannel,
    hookimpl,
)

logger = logging.getLogger(__name__)

OPTIONS = frozenset({"folder", "timezone"})
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
# Full disk or quota: space may come back.  Anything else (permissions,
# read-only file system) needs someone to fix the folder first.
_RETRYABLE = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EAGAIN, errno.EINTR}


def _part(value: str) -> str:
    return _UNSAFE.sub("-", value).strip("-.") or "x"


def archive_name(delivery: Delivery, day: dt.date) -> str:
    """The file name for ``delivery`` archived on ``day``."""
    parts = [day.isoformat(), _part(delivery.recipient.code)]
    if delivery.kind == "statement":
        parts.append(f"releve-{delivery.level}")
    else:
        parts += [_part(n) for n in delivery.invoice_numbers[:1]]
        parts.append(f"relance-{delivery.level}")
    return "_".join(parts) + ".pdf"


class ArchiveChannel(Channel):
    """Writes each delivery's PDF into one folder, atomically."""

    name = "archive"
    label = "Archive"

    def __init__(self, settings: ChannelSettings) -> None:
        opts = Options(settings, OPTIONS)
        default = settings.path(settings.data_dir) / "letters"
        folder = opts.path("folder", default)
        assert folder is not None
        self.folder = folder
        zone = opts.text("timezone", "Europe/Paris") or "Europe/Paris"
        try:
            self.zone = ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ChannelConfigError("timezone", f"unknown time zone {zone!r}") from exc

    async def send(self, delivery: Delivery) -> Receipt:
        day = dt.datetime.now(self.zone).date()
        try:
            path = await asyncio.to_thread(self._write, delivery, archive_name(delivery, day))
        except OSError as exc:
            raise DeliveryError(
                f"cannot archive into {self.folder}: {exc.strerror or exc}",
                retryable=exc.errno in _RETRYABLE,
            ) from exc
        return Receipt(channel=self.name, reference=str(path), detail=delivery.sha256)

    async def forget(self, receipt: Receipt) -> str | None:
        """Delete the letter's file: only a PDF of this channel's folder, never a link."""
        path = Path(receipt.reference)
        if path.parent != self.folder or path.suffix != ".pdf" or path.is_symlink():
            return f"{receipt.reference}: not a letter of {self.folder}, left as it is"
        try:
            await asyncio.to_thread(path.unlink, missing_ok=True)
        except OSError as exc:
            return f"{path}: cannot be deleted ({exc.strerror or exc})"
        return None

    def _write(self, delivery: Delivery, name: str) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        stem, suffix = name[: -len(".pdf")], ".pdf"
        fd, temp = tempfile.mkstemp(prefix=".relances-", suffix=".tmp", dir=self.folder)
        try:
            # mkstemp makes the file private (0600); an archived letter is for
            # people to read, so it gets the mode the umask gives new files.
            os.fchmod(fd, 0o666 & ~_umask())
            with os.fdopen(fd, "wb") as out:
                out.write(delivery.pdf)
                out.flush()
                os.fsync(out.fileno())
            for n in range(1, 1000):
                path = self.folder / (name if n == 1 else f"{stem}_{n}{suffix}")
                if _same_content(path, delivery.pdf):
                    logger.info("%s already archived as %s", delivery.key, path)
                    return path
                # link() refuses to replace an existing file, so a concurrent
                # writer or an older file is never overwritten.
                try:
                    os.link(temp, path)
                except FileExistsError:
                    continue
                except OSError as exc:
                    if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV):
                        raise
                    if os.path.lexists(path):
                        continue
                    os.replace(temp, path)  # no hard links here (FAT, some shares)
                return path
            raise OSError(errno.EEXIST, f"too many files named {stem}*")
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)


def _umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current


def _same_content(path: Path, content: bytes) -> bool:
    """Whether ``path`` is a regular file holding ``content``.

    Only a regular file is read: a FIFO or a device put where a letter goes
    would block the read or never end it, and a symbolic link leads out of
    the folder.  Such a name is taken, and the letter goes beside it.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:  # nothing there, a symbolic link (ELOOP), no permission
        return False
    with os.fdopen(fd, "rb") as existing:
        found = os.fstat(fd)
        if not stat.S_ISREG(found.st_mode) or found.st_size != len(content):
            return False
        return existing.read(len(content) + 1) == content


@hookimpl
def relances_register_channels(register: RegisterChannel) -> None:
    register("archive", ArchiveChannel)
