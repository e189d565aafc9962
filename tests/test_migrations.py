"""Upgrading a database made by the previous release keeps its data and says what it could not tell.

Release 0.1 is the schema of revision 0001: the test builds a database at
that revision, fills it the way 0.1 did (with its own column names), then
upgrades it as `relances init` does, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import Cli, unavailable, write_settings
from sqlalchemy import inspect, text

from relances.daemon import storage

PG_SERVER = os.environ.get("RELANCES_TEST_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432")

# The newest revision, from the migrations folder: each new migration is upgraded through.
HEAD = max(p.name.split("_", 1)[0] for p in
           (Path(storage.__file__).parent / "migrations" / "versions").glob("[0-9]*_*.py"))
NOW = dt.datetime(2024, 11, 22, 14, 0, tzinfo=dt.UTC)
RELEASE_01 = [
    "INSERT INTO customers (id, code, name, language, is_consumer, opted_out, created_at, "
    "updated_at) VALUES (1, 'DAN01', 'DANIERE FLORENCE', 'fr', :yes, :no, :now, :now), "
    "(2, 'INT01', 'INTEL', 'fr', :no, :no, :now, :now), "
    "(3, 'BOU02', 'BOULANGERIE MARTIN', 'fr', :no, :no, :now, :now)",
    "INSERT INTO invoices (id, number, customer_id, invoice_date, due_date, total, remaining, "
    "level, last_reminded_on, last_reminded_level, on_hold, created_at, updated_at) VALUES "
    "(1, 'COD_F1023', 1, '2023-11-24', '2023-11-24', 25306, 25306, 1, NULL, NULL, :no, :now, :now), "
    "(2, 'COD_F1026', 2, '2024-02-08', '2024-02-08', 68040, 58040, 1, '2024-11-22', 1, :no, "
    ":now, :now)",
    "INSERT INTO payments (invoice_id, paid_on, amount, reference, recorded_at, recorded_by) "
    "VALUES (2, '2024-11-20', 10000, 'CHQ-1', :now, 'alice')",
    "INSERT INTO history (at, \"user\", invoice_id, customer_id, event, action, level, channel) "
    "VALUES (:now, 'daemon', 2, 2, 'sent', 'Relance niveau 1 (Email)', 1, 'email')",
]


async def _pg_admin(statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_SERVER.replace("postgresql+asyncpg", "postgresql") + "/test",
                                 timeout=5)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
        return
    name = f"relances_upgrade_{os.getpid()}"
    try:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}"'))
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - whatever keeps PostgreSQL out of reach
        unavailable(f"PostgreSQL is not reachable at {PG_SERVER}: {exc}")
    yield f"{PG_SERVER}/{name}"
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _database_of_release_01(url: str) -> None:
    engine = storage.create_engine(url)
    try:
        assert await storage.upgrade(engine, "0001") == (None, "0001")
        async with engine.begin() as conn:
            for statement in RELEASE_01:
                await conn.execute(text(statement), {"yes": True, "no": False, "now": NOW})
    finally:
        await engine.dispose()


async def _read(url: str) -> dict[str, object]:
    engine = storage.create_engine(url)
    try:
        async with engine.connect() as conn:
            kinds = dict((await conn.execute(text("SELECT code, kind FROM customers"))).all())
            here = dict((await conn.execute(
                text("SELECT number, reminded_here FROM invoices"))).all())
            reflected = (await conn.execute(text("SELECT reflected FROM payments"))).scalar_one()
            remaining = dict((await conn.execute(
                text("SELECT number, remaining FROM invoices"))).all())
            unknown = (await conn.execute(text(
                "SELECT c.code FROM history h JOIN customers c ON c.id = h.customer_id "
                "WHERE h.event = 'kind-unknown' ORDER BY c.code"))).scalars().all()
            columns = await conn.run_sync(
                lambda sync: [c["name"] for c in inspect(sync).get_columns("customers")])
    finally:
        await engine.dispose()
    return {"kinds": kinds, "here": {k: bool(v) for k, v in here.items()},
            "reflected": bool(reflected), "remaining": remaining, "unknown": list(unknown),
            "columns": columns}


def test_an_01_database_upgrades_with_its_data(empty_database: str, tmp_path: Path) -> None:
    asyncio.run(_database_of_release_01(empty_database))
    cli = Cli(write_settings(tmp_path / "settings.yaml", {"database.url": empty_database}))
    out = cli("init").stdout
    assert f"database upgraded from revision 0001 to {HEAD}" in out
    # It cannot tell a business someone declared from a customer nobody described.
    assert "2 customers are now of unknown kind" in out
    assert out.rstrip().endswith("  BOU02\n  INT01")
    data = asyncio.run(_read(empty_database))
    assert data["kinds"] == {"DAN01": "consumer", "INT01": "unknown", "BOU02": "unknown"}
    assert data["unknown"] == ["BOU02", "INT01"]
    assert data["here"] == {"COD_F1023": False, "COD_F1026": True}  # a reminder left for it
    assert data["reflected"] is False  # no stale export may undo the cheque
    assert data["remaining"] == {"COD_F1023": 25306, "COD_F1026": 58040}
    assert "is_consumer" not in data["columns"] and "siren" in data["columns"]
    # The ledger works on the upgraded database, and the history says what happened.
    assert "(nature inconnue, fr)" in cli("customer INT01").stdout
    assert "Nature du client inconnue après la mise à jour" in cli("customer INT01").stdout
    assert "(particulier, fr)" in cli("customer DAN01").stdout
    assert f"database is up to date (revision {HEAD})" in cli("init").stdout


async def _drift(url: str) -> list[object]:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from relances.daemon.models import Base

    engine = storage.create_engine(url)
    try:
        await storage.upgrade(engine)
        async with engine.connect() as conn:
            return await conn.run_sync(lambda sync: compare_metadata(
                MigrationContext.configure(sync, opts={"compare_type": True}), Base.metadata))
    finally:
        await engine.dispose()


def test_the_migrations_make_the_schema_the_models_describe(empty_database: str) -> None:
    """A model changed without its migration (or the reverse) fails here."""
    assert asyncio.run(_drift(empty_database)) == []


def test_the_newest_revision_read_from_the_files_is_alembics_head() -> None:
    # Every command checks the schema against storage.schema_head(), which reads the
    # migrations' file names rather than import Alembic; Alembic must agree.
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(storage.MIGRATIONS))
    assert storage.schema_head() == ScriptDirectory.from_config(cfg).get_current_head() == HEAD
