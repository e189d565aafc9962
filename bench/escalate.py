"""Escalation on a million open invoices, against a bare UPDATE of the same rows.

Builds 1,000,000 open invoices over 50,000 customers in a SQLite file (due
dates over the last 400 days, levels spread as a real ledger's are), then,
on two identical copies of that file and in this one process:

- runs ``escalate()``: the run's record, the set-based UPDATE that raises
  every eligible invoice and notes the run on it, and the count per level;
- runs a bare ``UPDATE invoices SET level = level + 1`` of exactly the rows
  escalation moved (their ids held in a temporary table beforehand).

Each of ``--repeat`` runs (default 3) prints both times and their ratio,
the two sides in turn first, so that neither always meets a cold cache;
the goal is at most 1.5 on every run, so the worst is the figure.  Then
the time of the first page of the reminders table on that database (goal:
under a second).  It ends with ``escalate run N: ratio R`` per run and
``escalate worst: ratio R``.  The ratio is what to compare between
machines, not the seconds.

    .venv/bin/python bench/escalate.py [--invoices 1000000] [--customers 50000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from _lines import ratio_line
from sqlalchemy import text

from relances.daemon import storage
from relances.daemon.config import settings_from_data
from relances.daemon.escalation.run import escalate
from relances.daemon.ledger.listing import reminders_table

AS_OF = dt.date(2026, 11, 27)


async def create_schema(path: Path) -> None:
    engine = storage.create_engine(f"sqlite+aiosqlite:///{path}")
    await storage.upgrade(engine)
    await engine.dispose()


def fill(path: Path, invoices: int, customers: int) -> None:
    rng = random.Random(42)
    db = sqlite3.connect(path)
    now = dt.datetime.now(dt.UTC).isoformat(sep=" ")
    db.executemany(
        "INSERT INTO customers (id, code, name, language, kind, opted_out, created_at, "
        "updated_at) VALUES (?, ?, ?, 'fr', 'business', ?, ?, ?)",
        ((i, f"C{i:06d}", f"Client {i}", int(i % 500 == 0), now, now)
         for i in range(1, customers + 1)))

    def rows():  # type: ignore[no-untyped-def]
        for i in range(1, invoices + 1):
            due = AS_OF - dt.timedelta(days=rng.randint(-30, 400))
            level = rng.choices((0, 1, 2, 3), weights=(55, 25, 12, 8))[0]
            sent = due + dt.timedelta(days=rng.randint(46, 120)) if level else None
            if sent and sent > AS_OF:
                sent = AS_OF
            cents = rng.randint(1_000, 500_000)
            yield (i, f"F{i:08d}", rng.randint(1, customers), (due - dt.timedelta(days=30)).isoformat(),
                   due.isoformat(), cents, cents, level, sent.isoformat() if sent else None,
                   level if sent else None, now, now)

    db.executemany(
        "INSERT INTO invoices (id, number, customer_id, invoice_date, due_date, total, remaining, "
        "level, last_reminded_on, last_reminded_level, on_hold, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)", rows())
    db.commit()
    db.execute("ANALYZE")
    db.close()


async def time_escalation(path: Path) -> tuple[float, int, list[int]]:
    settings = settings_from_data({})
    engine = storage.create_engine(f"sqlite+aiosqlite:///{path}")
    sessions = storage.sessionmaker(engine)
    async with engine.connect() as conn:
        before = dict((await conn.execute(text("SELECT id, level FROM invoices"))).all())
    started = time.perf_counter()
    async with sessions.begin() as session:
        result = await escalate(session, settings, as_of=AS_OF, user="bench")
    elapsed = time.perf_counter() - started
    async with engine.connect() as conn:
        after = dict((await conn.execute(text("SELECT id, level FROM invoices"))).all())
    await engine.dispose()
    moved = [i for i, level in after.items() if level != before[i]]
    return elapsed, result.total, moved


def settle(*paths: Path) -> None:
    """Write the fresh copies out and read them once: neither side then meets the
    kernel still writing a copy back, or a file it has not read yet."""
    os.sync()
    for path in paths:
        with path.open("rb") as f:
            while f.read(1 << 24):
                pass


async def moved_ids(path: Path) -> list[int]:
    """The ids escalation moves on ``path``, found on a copy of it."""
    scratch = path.with_name("scratch.db")
    shutil.copy(path, scratch)
    settle(scratch)
    try:
        _, _, moved = await time_escalation(scratch)
    finally:
        scratch.unlink()
    return moved


async def time_bare_update(path: Path, moved: list[int]) -> float:
    engine = storage.create_engine(f"sqlite+aiosqlite:///{path}")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TEMP TABLE moved (id INTEGER PRIMARY KEY)"))
        for start in range(0, len(moved), 50_000):
            await conn.execute(text("INSERT INTO moved (id) VALUES (:id)"),
                               [{"id": i} for i in moved[start:start + 50_000]])
    started = time.perf_counter()  # like escalate(), the transaction and its commit count
    async with engine.begin() as conn:  # same pooled connection: the temp table is there
        await conn.execute(text(
            "UPDATE invoices SET level = level + 1 WHERE id IN (SELECT id FROM moved)"))
    elapsed = time.perf_counter() - started
    await engine.dispose()
    return elapsed


async def time_first_page(path: Path) -> float:
    engine = storage.create_engine(f"sqlite+aiosqlite:///{path}")
    sessions = storage.sessionmaker(engine)
    async with sessions() as session:  # open the connection outside the timing
        await session.execute(text("SELECT 1"))
        started = time.perf_counter()
        rows = await reminders_table(session, as_of=AS_OF, limit=50)
        elapsed = time.perf_counter() - started
    await engine.dispose()
    assert len(rows) == 50
    return elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--invoices", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="relances-bench-") as tmp:
        base = Path(tmp) / "base.db"
        started = time.perf_counter()
        await create_schema(base)
        fill(base, args.invoices, args.customers)
        print(f"built {args.invoices:,} invoices over {args.customers:,} customers "
              f"in {time.perf_counter() - started:.1f} s")
        ours, bare = [], []
        for run in range(args.repeat):
            copy_a, copy_b = Path(tmp) / f"a{run}.db", Path(tmp) / f"b{run}.db"
            shutil.copy(base, copy_a)
            shutil.copy(base, copy_b)
            settle(copy_a, copy_b)
            if run % 2:  # the bare side first: it needs the moved ids, from the base
                moved = await moved_ids(base)
                bare.append(await time_bare_update(copy_b, moved))
                elapsed, total, _ = await time_escalation(copy_a)
            else:
                elapsed, total, moved = await time_escalation(copy_a)
                bare.append(await time_bare_update(copy_b, moved))
            ours.append(elapsed)
            print(f"run {run + 1}: escalate {elapsed:.2f} s ({total:,} invoices moved), "
                  f"bare UPDATE {bare[-1]:.2f} s")
            copy_a.unlink()
            copy_b.unlink()
        page = min([await time_first_page(base) for _ in range(3)])
    print(f"first page of `list` (50 rows): {page * 1000:.0f} ms (goal: < 1000 ms)")
    print("goal: escalate <= 1.5 on every run")
    ratios = [o / b for o, b in zip(ours, bare, strict=True)]
    for run, value in enumerate(ratios, 1):
        sys.stdout.write(ratio_line(f"escalate run {run}", value))
    sys.stdout.write(ratio_line("escalate worst", max(ratios)))


if __name__ == "__main__":
    asyncio.run(main())
