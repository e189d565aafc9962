"""Hostile surroundings: the files a run leaves behind, and a database that fails.

Whatever the caller's umask, nothing a run writes is readable by others.  A
database that cannot be reached, written, grown or locked is one line on
stderr naming it and the reason, exit status 1: never a traceback, never
the statement's values (customers' names and addresses).

Permissions are tested as a user without root's bypass of them: as root,
the command runs under ``setpriv`` with CAP_DAC_OVERRIDE dropped.  A full
disk is a small tmpfs mounted in a private user and mount namespace
(``unshare``), gone with the command.  Where either cannot be done the test
is skipped, or fails under CI (``helpers.unavailable``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from helpers import SAMPLE, Cli, unavailable, write_settings
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from relances.daemon import storage
from relances.daemon.config import DATABASE_URL_ENV

RELANCES = Path(sys.executable).with_name("relances")
AS_OF = "22/11/2024"
BUSY = "base occupée : une autre importation est en cours ; réessayez quand elle sera finie"
WITHOUT_ROOT_BYPASS = ["setpriv", "--inh-caps=-dac_override,-dac_read_search",
                       "--bounding-set=-dac_override,-dac_read_search"]


@pytest.fixture(autouse=True)
def _no_database_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)


@pytest.fixture
def umask() -> Iterator[Callable[[int], None]]:
    """Set the process umask (a run tightens it in-process); the test's own comes back after."""
    original = current_umask()

    def set_umask(mask: int) -> None:
        os.umask(mask)

    yield set_umask
    os.umask(original)


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def sqlite_cli(tmp_path: Path, **overrides: Any) -> Cli:
    """The CLI on the default SQLite file, ``data/relances.db`` beside the settings."""
    return Cli(write_settings(tmp_path / "settings.yaml", overrides))


def customers_file(path: Path, count: int) -> Path:
    lines = ["code;name;email"] + [f"S{n:05d};Secret Person {n};secret.{n}@example.com"
                                   for n in range(count)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def relances(settings: Path, *args: str, prefix: list[str] | None = None,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed ``relances`` command in a process of its own."""
    environment = {k: v for k, v in os.environ.items() if k not in (DATABASE_URL_ENV, "RELANCES_CONFIG")}
    return subprocess.run(
        [*(prefix or []), str(RELANCES), "--config", str(settings), "--user", "tester", *args],
        capture_output=True, text=True, env={**environment, **(env or {})}, timeout=60)


def unprivileged() -> list[str]:
    """A command prefix under which file permissions apply, root or not."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        unavailable("running as root without setpriv: permissions cannot be tested")
    return WITHOUT_ROOT_BYPASS


def one_error(result: subprocess.CompletedProcess[str] | Result, line: str) -> None:
    status = result.returncode if isinstance(result, subprocess.CompletedProcess) else result.exit_code
    assert status == 1, result.stderr
    assert result.stderr.splitlines() == [f"relances: error: {line}"], result.stderr
    assert "Secret Person" not in result.stdout + result.stderr


def modes_under(folder: Path) -> dict[Path, int]:
    return {path: stat.S_IMODE(path.stat().st_mode) for path in [folder, *folder.rglob("*")]}


def assert_private(modes: dict[Path, int]) -> None:
    for path, mode in modes.items():
        limit = 0o750 if path.is_dir() else 0o640
        assert mode & ~limit == 0, f"{path}: {oct(mode)}"


# -- A. Files a run leaves behind ---------------------------------------------------------------

def test_what_a_run_writes_is_not_readable_by_others_whatever_the_umask(
        tmp_path: Path, umask: Callable[[int], None], monkeypatch: pytest.MonkeyPatch) -> None:
    cli = sqlite_cli(tmp_path)
    data = tmp_path / "data"
    seen: dict[Path, int] = {}
    close = storage.App.close

    async def close_after_looking(self: storage.App) -> None:
        """The -wal and -shm files live while a connection does: look before closing."""
        if data.exists():
            seen.update(modes_under(data))
        await close(self)

    monkeypatch.setattr(storage.App, "close", close_after_looking)
    for command in ["init", ["import", "customers", str(SAMPLE / "customers.csv")],
                    ["import", "invoices", str(SAMPLE / "seed.tsv")],
                    f"escalate --as-of {AS_OF}", f"send --as-of {AS_OF}",
                    ["report", "-o", str(data / "report.pdf"), "--as-of", AS_OF]]:
        umask(0o000)
        cli(command)
    seen.update(modes_under(data))

    names = {path.name for path in seen}
    assert {"relances.db", "relances.db-wal", "relances.db-shm", "letters", "report.pdf"} <= names
    assert any(path.suffix == ".pdf" and path.parent.name == "letters" for path in seen)
    assert_private(seen)


@pytest.mark.parametrize(("caller", "run"), [(0o000, 0o027), (0o022, 0o027), (0o077, 0o077)])
def test_a_run_adds_0027_to_the_umask_and_keeps_stricter_bits(
        tmp_path: Path, umask: Callable[[int], None], caller: int, run: int) -> None:
    umask(caller)
    sqlite_cli(tmp_path)("init")
    assert current_umask() == run
    database = tmp_path / "data" / "relances.db"
    assert stat.S_IMODE(database.stat().st_mode) == 0o666 & ~run
    assert stat.S_IMODE(database.parent.stat().st_mode) == 0o777 & ~run


def test_a_password_written_in_database_url_is_warned_about(tmp_path: Path, postgres_url: str) -> None:
    with_password = make_url(postgres_url).set(password="pw-in-settings")
    url = with_password.render_as_string(hide_password=False)
    settings = write_settings(tmp_path / "settings.yaml", {"database.url": url})
    written = relances(settings, "list")
    assert written.returncode == 0, written.stderr
    (warning,) = written.stderr.splitlines()
    assert "database.url: the password is written in the settings file" in warning
    assert DATABASE_URL_ENV in warning and "pw-in-settings" not in warning

    plain = write_settings(tmp_path / "plain.yaml", {})
    from_environment = relances(plain, "list", env={DATABASE_URL_ENV: url})
    assert (from_environment.returncode, from_environment.stderr) == (0, "")


# -- B. Database errors, one line each ----------------------------------------------------------

@pytest.mark.parametrize("command", ["init", "list"])
@pytest.mark.parametrize(("url", "shown", "where"), [
    ("postgresql+asyncpg://x@127.0.0.1:1/x", "postgresql+asyncpg://x@127.0.0.1:1/x", "settings"),
    ("postgresql://x:s3cret@127.0.0.1:1/x", "postgresql://x:***@127.0.0.1:1/x", "environment"),
])
def test_an_unreachable_server_is_one_line_without_its_password(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        command: str, url: str, shown: str, where: str) -> None:
    if where == "environment":
        monkeypatch.setenv(DATABASE_URL_ENV, url)
        cli = sqlite_cli(tmp_path)
    else:
        cli = sqlite_cli(tmp_path, **{"database.url": url})
    result = cli(command, ok=False)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"relances: error: {shown}: cannot connect: Connection refused"]


@pytest.mark.parametrize(("case", "command", "reason"), [
    ("file", "import", "attempt to write a readonly database: the file is read-only"),
    ("folder", "import", "attempt to write a readonly database: the folder {data} is read-only "
                         "(SQLite writes the database's -wal and -shm files there)"),
    ("empty folder", "init", "cannot create the database: the folder {data} is read-only"),
])
def test_a_read_only_database_is_one_line(tmp_path: Path, case: str, command: str, reason: str) -> None:
    prefix = unprivileged()
    cli = sqlite_cli(tmp_path)
    data = tmp_path / "data"
    database = data / "relances.db"
    if case == "empty folder":
        data.mkdir()
    else:
        cli("init")
    locked = database if case == "file" else data
    mode = locked.stat().st_mode
    locked.chmod(0o444 if case == "file" else 0o555)
    try:
        args = ["import", "customers", str(customers_file(tmp_path / "c.csv", 3))] \
            if command == "import" else [command]
        result = relances(cli.settings, *args, prefix=prefix)
    finally:
        locked.chmod(mode)
    one_error(result, f"{database}: {reason.format(data=data)}")


def test_a_folder_that_cannot_be_made_for_the_database_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("", encoding="utf-8")
    database = blocker / "relances.db"
    cli = sqlite_cli(tmp_path, **{"database.url": f"sqlite+aiosqlite:///{database}"})
    one_error(cli("init", ok=False),
              f"{database}: cannot create its folder {blocker}: a file is in the way")

    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    database = locked / "data" / "relances.db"
    settings = write_settings(tmp_path / "locked.yaml",
                              {"database.url": f"sqlite+aiosqlite:///{database}"})
    one_error(relances(settings, "list", prefix=unprivileged()),
              f"{database}: cannot create its folder {database.parent}: Permission denied")


def _can_mount_a_tmpfs(folder: Path) -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "--propagation", "private",
         "mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)],
        capture_output=True, timeout=30)
    return probe.returncode == 0


def test_a_full_disk_is_one_line(tmp_path: Path) -> None:
    """The database on a 400 KiB file system: an import of 4,000 customers fills it."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if not _can_mount_a_tmpfs(disk):
        unavailable("cannot mount a small tmpfs in a user namespace here")
    database = disk / "relances.db"
    cli = sqlite_cli(tmp_path, **{"database.url": f"sqlite+aiosqlite:///{database}"})
    cli("init")
    shutil.move(database, tmp_path / "seed.db")
    script = (f'mount -t tmpfs -o size=400k tmpfs "{disk}" && cp "{tmp_path}/seed.db" "{database}" '
              f'&& exec "$@"')
    result = relances(cli.settings, "import", "customers",
                      str(customers_file(tmp_path / "many.csv", 4000)),
                      prefix=["unshare", "--user", "--map-root-user", "--mount",
                              "--propagation", "private", "sh", "-c", script, "sh"])
    assert result.returncode == 1, result.stderr
    (line,) = result.stderr.splitlines()
    # SQLite says "database or disk is full", or "disk I/O error" when the -shm file cannot grow.
    assert line.startswith(f"relances: error: {database}: the disk is full ("), line
    assert "Secret Person" not in result.stdout + result.stderr


def test_a_second_import_waits_then_says_another_is_running(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(storage, "BUSY_TIMEOUT", 0.3)
    cli = sqlite_cli(tmp_path)
    cli("init")
    database = tmp_path / "data" / "relances.db"
    first = sqlite3.connect(database, isolation_level=None)
    try:
        first.execute("BEGIN IMMEDIATE")
        started = time.monotonic()
        result = cli(["import", "customers", str(customers_file(tmp_path / "c.csv", 500))], ok=False)
        waited = time.monotonic() - started
    finally:
        first.close()
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"relances: error: {database}: {BUSY}"]
    assert "Secret Person" not in result.output
    assert waited >= 0.3
    assert "500 new customers" in cli(["import", "customers", str(tmp_path / "c.csv")]).stdout


def test_no_database_error_shows_the_statement_s_values(database_url: str) -> None:
    async def insert() -> str:
        engine = storage.create_engine(database_url)
        try:
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO customers (code, name) VALUES (:code, :name)"),
                                   {"code": "S1", "name": "Secret Person"})
        except IntegrityError as exc:
            return str(exc)
        finally:
            await engine.dispose()
        raise AssertionError("a customer without created_at was inserted")

    if database_url.startswith("sqlite"):
        async def schema() -> None:
            engine = storage.create_engine(database_url)
            await storage.upgrade(engine)
            await engine.dispose()

        asyncio.run(schema())
    message = asyncio.run(insert())
    assert "Secret Person" not in message and "S1" not in message


def test_a_data_dir_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the folder should be\n", encoding="utf-8")
    settings = write_settings(tmp_path / "settings.yaml", {
        "data_dir": str(blocker / "data"),
        "database.url": f"sqlite+aiosqlite:///{tmp_path / 'db' / 'relances.db'}"})
    result = Cli(settings)("init", ok=False)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"relances: error: {settings}:")
    assert result.stderr.rstrip("\n").endswith(f"data_dir: cannot create {blocker / 'data'}: "
                                               "Not a directory")
    assert result.stderr.count("\n") == 1
