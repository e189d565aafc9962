"""``relances backup FILE``: a consistent copy of the SQLite database, daemon running or not.

SQLite's online backup (``sqlite3.Connection.backup``) copies the database
as one transaction sees it: what was committed, write-ahead log included,
and nothing of a transaction still open elsewhere, without stopping the
daemon.  The copy is written beside FILE under a temporary name, checked
(``PRAGMA quick_check``) and renamed into place, so that FILE is never a
half-written database.  On PostgreSQL the command says how ``pg_dump``
does the same.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from pathlib import Path

import click
from sqlalchemy.engine import make_url

from relances.daemon.cli.main import Context, pass_context
from relances.daemon.config import load_settings
from relances.daemon.errors import ConfigError, RelancesError
from relances.daemon.service.locks import sqlite_database_path


class BackupError(RelancesError):
    """The copy could not be made; the message says why and where."""


def backup_sqlite(source: Path, target: Path) -> int:
    """Copy ``source`` to ``target`` with SQLite's online backup; the copy's size."""
    if not source.is_file():
        raise BackupError(f"{source}: no database to copy (run `relances init`)")
    folder = target.parent
    if not folder.is_dir():
        raise BackupError(f"{target}: the folder {folder} does not exist")
    if target.resolve() == source.resolve():
        raise BackupError(f"{target}: that is the database itself")
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=folder)
    os.close(fd)
    partial = Path(name)
    try:
        reader = sqlite3.connect(source, timeout=30)
        try:
            with contextlib.closing(sqlite3.connect(partial)) as copy:
                reader.backup(copy)
                verdict = copy.execute("PRAGMA quick_check").fetchone()[0]
                copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        finally:
            reader.close()
        if verdict != "ok":
            raise BackupError(f"{target}: the copy does not check: {verdict}")
        partial.replace(target)
    except sqlite3.Error as exc:
        raise BackupError(f"{source}: cannot copy the database: {exc}") from None
    except OSError as exc:
        raise BackupError(f"{target}: cannot write the copy: {exc.strerror}") from None
    finally:
        partial.unlink(missing_ok=True)
    return target.stat().st_size


@click.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
@pass_context
def backup_command(ctx: Context, file: Path, force: bool) -> None:
    """Copy the SQLite database to FILE, consistent even while the daemon runs."""
    settings = load_settings(ctx.config)
    source = sqlite_database_path(settings.database_url)
    if source is None:
        url = make_url(settings.database_url)
        if url.get_backend_name() != "postgresql":
            raise ConfigError(f"{settings.where('database', 'url')}: backup copies a SQLite "
                              "file; this database has none")
        shown = url.set(drivername="postgresql").render_as_string(hide_password=True)
        raise BackupError(f"{shown}: PostgreSQL keeps the ledger; copy it with "
                          f"pg_dump --format=custom --file {file} '{shown}' (restore with "
                          "pg_restore), as docs/deploy.md shows")
    if file.exists() and not force:
        raise BackupError(f"{file}: already exists (--force replaces it)")
    size = backup_sqlite(source, file)
    click.echo(f"{source} → {file}: {size / 2**20:.1f} MB, checked")


COMMANDS = [backup_command]
