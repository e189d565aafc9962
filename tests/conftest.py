"""Shared fixtures: a settings file, a database on SQLite and on PostgreSQL, the CLI.

Tests that take ``app`` or ``cli`` run twice, once on a SQLite file and
once on PostgreSQL (127.0.0.1:5432, database ``test``, trust auth, as on
the development machines and CI).  PostgreSQL tests use a database of
their own, created once per run and emptied before each test.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from helpers import SAMPLE, Cli, unavailable, write_settings

from relances.daemon import storage
from relances.daemon.config import load_settings
from relances.daemon.storage import App

PG_SERVER = os.environ.get("RELANCES_TEST_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432")
PG_DATABASE = f"relances_test_{os.getpid()}"


async def _pg_admin(statements: list[str]) -> None:
    import asyncpg

    dsn = PG_SERVER.replace("postgresql+asyncpg", "postgresql") + "/test"
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database at the newest schema, for this test run."""
    try:
        asyncio.run(_pg_admin([f'DROP DATABASE IF EXISTS "{PG_DATABASE}"',
                               f'CREATE DATABASE "{PG_DATABASE}"']))
    except (TimeoutError, OSError, Exception) as exc:  # noqa: BLE001
        unavailable(f"PostgreSQL is not reachable at {PG_SERVER}: {exc}")
    url = f"{PG_SERVER}/{PG_DATABASE}"

    async def migrate() -> None:
        engine = storage.create_engine(url)
        await storage.upgrade(engine)
        await engine.dispose()

    asyncio.run(migrate())
    yield url
    asyncio.run(_pg_admin([f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)']))


async def empty_postgres(url: str) -> None:
    from sqlalchemy import text

    from relances.daemon.models import Base

    engine = storage.create_engine(url)
    async with engine.begin() as conn:
        names = ", ".join(t.name for t in Base.metadata.sorted_tables)
        await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    await engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'data' / 'relances.db'}"
    url: str = request.getfixturevalue("postgres_url")
    asyncio.run(empty_postgres(url))
    return url


@pytest.fixture
def settings_path(tmp_path: Path, database_url: str) -> Path:
    return write_settings(tmp_path / "settings.yaml", {"database.url": database_url})


@pytest.fixture
async def app(settings_path: Path) -> AsyncIterator[App]:
    app = App(settings=load_settings(settings_path), user="tester")
    await storage.upgrade(app.engine)
    yield app
    await app.close()


@pytest.fixture
def cli(settings_path: Path) -> Cli:
    runner = Cli(settings_path)
    runner("init")
    return runner


@pytest.fixture
def seeded(cli: Cli) -> Cli:
    """The CLI with the sample customers and the seed's two invoices imported."""
    cli(["import", "customers", str(SAMPLE / "customers.csv")])
    cli(["import", "invoices", str(SAMPLE / "seed.tsv")])
    return cli


@pytest.fixture
def tsv(tmp_path: Path) -> Callable[..., Path]:
    """Write an import file in the seed's layout from rows of cells."""
    header = ("Code\tAffilié\tNom\temail\tDate Fac.\tN° Fac.\tAffect.\tRepr.\tTotal Fac.\t"
              "Reste\tEchéance\tEch.\tRglmt.\tN-1\tRelancé le\tInfo Réin\tN")

    def write(*rows: str, name: str = "invoices.tsv") -> Path:
        path = tmp_path / name
        path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
        return path

    return write
