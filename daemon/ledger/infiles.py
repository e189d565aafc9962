"""Import files opened as the hostile input they may be.

Every file an import reads (an export, a customers or payments file, the
FEC, a Factur-X PDF, a CDAR message, a bank statement) is opened here:

- only a regular file, checked on the open descriptor before one byte is
  read (a FIFO would hang the import, a device never end);
- at most :func:`size_limit` bytes (``imports.max_file_mb``; the entry
  points of the imports set it from the settings), refused with its size;
- decoded one way for the whole file: UTF-8 (with or without a BOM), else
  Windows-1252, what French spreadsheets save; a byte neither decodes, or a
  file that mixes both (a UTF-8 line pasted into a cp1252 export), is
  refused naming the line.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import os
import re
import stat
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import IO

from relances.daemon.config import ImportSettings
from relances.daemon.errors import LedgerError, RelancesError

MIB = 1 << 20
DEFAULT_LIMIT_MB: int = ImportSettings.model_fields["max_file_mb"].default  # imports.max_file_mb
_limit: ContextVar[int] = ContextVar("import_size_limit", default=DEFAULT_LIMIT_MB * MIB)
# A character of two to four bytes as UTF-8 writes it: in Windows-1252 text these pairs
# ("Ã©", "Ã¨", "Â ") are mojibake, never French.
_UTF8_SEQUENCE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")
_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


@contextlib.contextmanager
def size_limit(megabytes: int) -> Iterator[None]:
    """Files opened meanwhile (in this task or thread) may be ``megabytes`` MiB at most."""
    token = _limit.set(megabytes * MIB)
    try:
        yield
    finally:
        _limit.reset(token)


def _mb(size: int) -> str:
    return f"{size / MIB:,.1f} MB".replace(",", " ")


def open_binary(path: Path, *, error: type[RelancesError] = LedgerError,
                limit: int | None = None) -> IO[bytes]:
    """``path`` opened for reading, once it is known to be a regular file within the limit.

    The checks are made on the descriptor (no race with a file swapped in
    between), opened without blocking so that a FIFO is refused, not waited on.
    """
    limit = _limit.get() if limit is None else limit
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = next((name for test, name in _KINDS if test(info.st_mode)), "not a regular file")
            raise error(f"{path}: {kind}, not a file: refused")
        if info.st_size > limit:
            raise error(f"{path}: {_mb(info.st_size)}, larger than the {_mb(limit)} an import "
                        "takes (imports.max_file_mb)")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_up_to(handle: IO[bytes], path: Path, count: int, *,
               error: type[RelancesError] = LedgerError) -> bytes:
    """At most ``count`` bytes of a file :func:`open_binary` opened; a read that fails
    (an I/O error, a file on a lost network share) raises ``error``."""
    try:
        return handle.read(count)
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror}") from None


def read_bytes(path: Path, *, error: type[RelancesError] = LedgerError,
               limit: int | None = None) -> bytes:
    """The whole file, through :func:`open_binary`; a file that grows past the limit while
    it is read is refused too."""
    limit = _limit.get() if limit is None else limit
    with open_binary(path, error=error, limit=limit) as handle:
        data = read_up_to(handle, path, limit + 1, error=error)
    if len(data) > limit:
        raise error(f"{path}: larger than the {_mb(limit)} an import takes (imports.max_file_mb)")
    return data


def encoding_of(path: Path, handle: IO[bytes]) -> str:
    """``utf-8-sig`` or ``cp1252``, whichever decodes the whole file (read a MiB at a time,
    the handle left at its start); a byte neither decodes, or a file that mixes the two,
    raises :class:`LedgerError` naming the line."""
    try:
        not_utf8 = _decode_error(handle, "utf-8")
        if not_utf8 is None:
            return "utf-8-sig"
        failed = _decode_error(handle, "cp1252")
        if failed is not None:
            line, column, byte = _place(handle, failed)
            raise LedgerError(f"{path}:{line}: byte 0x{byte:02X} at column {column} is neither "
                              "UTF-8 nor Windows-1252: save the file as UTF-8")
        mixed = _utf8_sequence(handle)
        if mixed is not None:
            utf8 = _place(handle, mixed)[0]
            line = _place(handle, not_utf8)[0]
            raise LedgerError(f"{path}:{line}: the file mixes encodings (Windows-1252 on line "
                              f"{line}, UTF-8 on line {utf8}): save it whole as UTF-8")
    except OSError as exc:
        raise LedgerError(f"{path}: cannot read: {exc.strerror}") from None
    return "cp1252"


def decode(path: Path, data: bytes) -> str:
    """The text of a whole file read by :func:`read_bytes`, as :func:`encoding_of` decodes it
    (a UTF-8 file, nearly every one, decoded once)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode(encoding_of(path, io.BytesIO(data)))


def _decode_error(handle: IO[bytes], encoding: str) -> int | None:
    """The offset of the first byte that does not decode, or None."""
    handle.seek(0)
    decoder = codecs.getincrementaldecoder(encoding)()
    offset = 0
    try:
        while chunk := handle.read(MIB):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                return offset + exc.start - len(decoder.getstate()[0])
            offset += len(chunk)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            return offset + exc.start - len(decoder.getstate()[0])
        return None
    finally:
        handle.seek(0)


def _utf8_sequence(handle: IO[bytes]) -> int | None:
    """The offset of the first UTF-8 multi-byte character in the file, or None."""
    handle.seek(0)
    offset, tail = 0, b""
    try:
        while chunk := handle.read(MIB):
            found = _UTF8_SEQUENCE.search(tail + chunk)
            if found is not None:
                return offset - len(tail) + found.start()
            offset += len(chunk)
            tail = chunk[-3:]
        return None
    finally:
        handle.seek(0)


def _place(handle: IO[bytes], offset: int) -> tuple[int, int, int]:
    """The line and column (1-based) of a byte offset, and the byte there."""
    handle.seek(0)
    line, done = 1, 0
    try:
        while done + MIB <= offset:
            chunk = handle.read(MIB)
            line += chunk.count(b"\n")
            done += len(chunk)
        head = handle.read(offset - done + 1)
    finally:
        handle.seek(0)
    before, byte = head[:-1], head[-1] if head else 0
    line += before.count(b"\n")
    column = len(before) - (before.rfind(b"\n") + 1) + 1
    return line, column, byte
