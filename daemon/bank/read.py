"""Which format a statement file is, from its content, and its reader."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

from relances.daemon.bank.statements import MAX_STATEMENT_BYTES, Statement
from relances.daemon.errors import BankError
from relances.daemon.ledger import infiles

FORMATS = ("camt", "cfonb", "ofx", "mt940")


def _load(path: Path) -> bytes:
    """The file, a regular one of at most MAX_STATEMENT_BYTES (a FIFO is refused, not waited on)."""
    with infiles.open_binary(path, error=BankError) as handle:
        data = b""
        size = os.fstat(handle.fileno()).st_size
        if size <= MAX_STATEMENT_BYTES:  # and a file that grows while it is read is refused
            data = infiles.read_up_to(handle, path, MAX_STATEMENT_BYTES + 1, error=BankError)
            size = len(data)
        if size > MAX_STATEMENT_BYTES:
            raise BankError(f"{path}: {size} bytes: larger than a statement can be "
                            f"({MAX_STATEMENT_BYTES // 1024 // 1024} MB)")
    return data


def _reader(name: str) -> Any:
    """The reader's module, imported when first needed: OFX's and MT940's libraries
    take a second to load, which a camt.053 import need not wait for."""
    return importlib.import_module(f"relances.daemon.bank.{name}")


def statement_format(data: bytes) -> str | None:
    """``camt``, ``cfonb``, ``ofx``, ``mt940``, or None when it is none of them."""
    for name in ("camt", "cfonb", "ofx", "mt940"):  # each recognises only its own
        if _reader(name).looks_like(data):
            return name
    return None


def read_statement(path: Path) -> Statement:
    """Read a statement of any supported format; BankError names what is wrong and where."""
    data = _load(path)
    name = statement_format(data)
    if name is None:
        raise BankError(f"{path}: not a bank statement (camt.053, CFONB 120, OFX or MT940)")
    return _reader(name).read(path, data)
