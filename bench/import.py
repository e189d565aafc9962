"""Importing the ERP's export, and listing it, against what a user would write by hand.

Writes an export of 100,000 invoices over 5,000 customers in the seed's TSV
layout (French amounts such as ``1 253,06``, dates such as ``24/11/2023``,
levels and "N-1" reminder dates spread as a real ledger's are), creates a
SQLite database with the real schema (``storage.upgrade``, Alembic), then
measures in this one process, side by side:

- **first import**: ``import_invoices()`` (validation of every cell, the
  comparison with the book, the bulk writes, the commit) into an empty
  database, against the bare baseline below into an empty database;
- **unchanged re-import**: ``import_invoices()`` of the same file again,
  which writes nothing, against the same bare baseline;
- **list json**: what ``relances list --format json`` does for those
  invoices (``reminders_table`` and ``render_rows``, in-process), against a
  bare ``SELECT`` of the same columns and ``json.dumps``; both outputs
  must be identical, byte for byte;
- **peak RSS** of a first import and of an unchanged re-import at
  ``--rows`` and at four times as many rows, each in a fresh subprocess
  (its ``VmHWM``): a flat import has a ratio of about 1.0, the goal is
  under 1.3.

The bare baseline is the best a user could write by hand: the ``csv``
module reads the same file, amounts become integer cents and dates ISO
strings (minimal but real conversions), and one ``executemany`` per table
inserts the customers, then the invoices, in one transaction on a
connection with the pragmas of ``storage.create_engine`` (WAL,
``synchronous=NORMAL``, foreign keys).  The rows it writes are checked
against those of the import, and the bare listing's JSON against the
command's; a difference prints MISMATCH and the exit status is 1.

Times are the best of ``--repeat`` runs, the two sides interleaved; the
ratios are what to compare between machines, not the seconds.

    .venv/bin/python bench/import.py [--rows 100000] [--customers 5000] [--repeat 5] [--skip-rss]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import json
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _lines import ratio_line
from sqlalchemy import text

from relances.daemon import storage
from relances.daemon.cli.table import render_rows
from relances.daemon.config import Settings, settings_from_data
from relances.daemon.ledger.imports import import_invoices
from relances.daemon.ledger.listing import reminders_table

AS_OF = dt.date(2026, 11, 27)
HEADER = ("Code", "Affilié", "Nom", "email", "Date Fac.", "N° Fac.", "Affect.", "Repr.",
          "Total Fac.", "Reste", "Échéance", "Ech.", "Rglmt.", "N-1", "Relancé le", "Info Réin",
          "N")
TRADES = ("BOULANGERIE", "GARAGE", "PHARMACIE", "CABINET", "HOTEL", "RESTAURANT", "SARL",
          "TRANSPORTS", "MENUISERIE", "ÉPICERIE", "IMPRIMERIE", "PLOMBERIE")
NAMES = ("MARTIN", "BERNARD", "DUBOIS", "THOMAS", "ROBERT", "RICHARD", "PETIT", "DURAND",
         "LEROY", "MOREAU", "SIMON", "LAURENT", "LEFÈVRE", "MICHEL", "GARCIA", "DAVID")
METHODS = ("Virement", "Chèque", "LCR", "Prélèvement", "Carte")
PEOPLE = ("PC", "JD", "MB", "AL", "SR", "CG")


# -- the export ------------------------------------------------------------------------


def french(cents: int) -> str:
    """``125306`` → ``"1 253,06"``, as the ERP shows amounts."""
    euros, rest = divmod(cents, 100)
    return f"{euros:,}".replace(",", " ") + f",{rest:02d}"


def write_export(path: Path, rows: int, customers: int, seed: int = 42) -> None:
    """An export of ``rows`` invoices over ``customers`` customers, in the seed's layout."""
    rng = random.Random(seed)
    people = []
    for i in range(1, customers + 1):
        trade, name = rng.choice(TRADES), rng.choice(NAMES)
        code = f"{trade[:3]}{i:05d}".replace("É", "E")
        email = f"compta@{trade.lower()}-{name.lower()}-{i}.example" if rng.random() < 0.7 else ""
        people.append((code, code if rng.random() < 0.9 else "", f"{trade} {name}", email))
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("\t".join(HEADER) + "\n")
        for n in range(1, rows + 1):
            code, affiliate, name, email = people[rng.randrange(customers)]
            invoice_date = AS_OF - dt.timedelta(days=rng.randint(0, 540))
            due = invoice_date + dt.timedelta(days=rng.choice((30, 30, 45, 60)))
            total = min(max(int(rng.lognormvariate(11.0, 1.3)), 500), 9_999_999)
            share = rng.random()
            remaining = total if share < 0.75 else 0 if share > 0.95 else rng.randint(1, total)
            level = 0
            reminded = ""
            if due < AS_OF and remaining:
                level = rng.choices((0, 1, 2, 3), weights=(55, 25, 12, 8))[0]
                if level:
                    sent = min(due + dt.timedelta(days=rng.randint(10, 120)), AS_OF)
                    reminded = f"{sent:%d/%m/%Y}"
            out.write("\t".join((
                code, affiliate, name, email, f"{invoice_date:%d/%m/%Y}", f"COD_F{n:07d}",
                rng.choice(PEOPLE), rng.choice(PEOPLE), french(total), french(remaining),
                f"{due:%d/%m/%Y}", rng.choice(METHODS), "1", reminded, "(i)", "",
                str(level) if level else "")) + "\n")


# -- the database -----------------------------------------------------------------------


async def create_schema(path: Path) -> None:
    engine = storage.create_engine(f"sqlite+aiosqlite:///{path}")
    await storage.upgrade(engine)
    await engine.dispose()


def bare_connect(path: Path) -> sqlite3.Connection:
    """A connection with the pragmas of ``storage.create_engine``."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA foreign_keys=ON")
    db.execute("PRAGMA busy_timeout=30000")
    db.execute("PRAGMA synchronous=NORMAL")
    return db


def invoices_of(path: Path) -> list[tuple[object, ...]]:
    """What both sides must have written, for the check."""
    db = sqlite3.connect(path)
    rows = db.execute(
        "SELECT i.number, c.code, c.name, c.affiliate_code, c.email, i.invoice_date, i.due_date, "
        "i.total, i.remaining, i.payment_method, i.settlement, i.assignment, i.representative, "
        "i.level, i.last_reminded_on, i.last_reminded_level FROM invoices i "
        "JOIN customers c ON c.id = i.customer_id ORDER BY i.number").fetchall()
    db.close()
    return rows


# -- the bare baseline -----------------------------------------------------------------------


def _cents(text: str) -> int:
    return int(text.replace(" ", "").replace(",", ""))


def _iso(text: str) -> str | None:
    return f"{text[6:10]}-{text[3:5]}-{text[:2]}" if text else None


def bare_import(db_path: Path, tsv: Path) -> float:
    """csv + one executemany per table, one transaction: the time from opening the file
    to the commit."""
    db = bare_connect(db_path)
    started = time.perf_counter()
    now = dt.datetime.now(dt.UTC).isoformat(sep=" ")
    customers: dict[str, int] = {}
    customer_rows, invoice_rows = [], []
    with tsv.open(encoding="utf-8", newline="") as source:
        reader = csv.reader(source, delimiter="\t")
        next(reader)
        for r in reader:
            customer_id = customers.get(r[0])
            if customer_id is None:
                customer_id = customers[r[0]] = len(customers) + 1
                customer_rows.append((customer_id, r[0], r[2] or r[0], r[1] or None,
                                      r[3] or None, now, now))
            level = int(r[16] or 0)
            reminded = _iso(r[13])
            invoice_rows.append((
                r[5], customer_id, _iso(r[4]), _iso(r[10]), _cents(r[8]), _cents(r[9]),
                r[11] or None, r[12] or None, r[6] or None, r[7] or None, level, reminded,
                level if reminded else None, now, now))
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO customers (id, code, name, affiliate_code, email, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)", customer_rows)
    db.executemany(
        "INSERT INTO invoices (number, customer_id, invoice_date, due_date, total, remaining, "
        "payment_method, settlement, assignment, representative, level, last_reminded_on, "
        "last_reminded_level, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", invoice_rows)
    db.execute("COMMIT")
    elapsed = time.perf_counter() - started
    db.close()
    return elapsed


def bare_list(db_path: Path, settings: Settings) -> tuple[float, str]:
    """The same columns in one SELECT, the policy's auto_send in a CASE, and json.dumps."""
    auto = settings.policy(None)
    sends = " ".join(f"WHEN {level} THEN '{'auto' if auto.level(level).auto_send else 'manual'}'"
                     for level in (1, 2, 3))
    held = "(i.on_hold AND (i.hold_until IS NULL OR i.hold_until >= :as_of))"
    query = (
        "SELECT c.code AS customer_code, c.affiliate_code, c.name AS customer_name, c.email, "
        "i.invoice_date, i.number AS invoice_number, i.assignment, i.representative, "
        "printf('%.2f', i.total / 100.0) AS total, "
        "printf('%.2f', i.remaining / 100.0) AS remaining, i.due_date, i.payment_method, "
        "i.last_reminded_on, i.level, "
        "CAST(julianday(:as_of) - julianday(i.due_date) AS INTEGER) AS days_overdue, "
        f"{held} AS on_hold, CASE WHEN {held} THEN i.hold_reason END AS hold_reason, "
        "CASE WHEN i.level >= 1 AND (i.last_reminded_level IS NULL OR "
        f"i.last_reminded_level < i.level) AND NOT {held} AND NOT c.opted_out "
        f"THEN CASE i.level {sends} END END AS to_send "
        "FROM invoices i JOIN customers c ON c.id = i.customer_id "
        "WHERE i.remaining > 0 AND i.due_date < :as_of ORDER BY i.due_date, i.number")
    db = bare_connect(db_path)
    started = time.perf_counter()
    cursor = db.execute(query, {"as_of": AS_OF.isoformat()})
    keys = [d[0] for d in cursor.description]
    rows = [dict(zip(keys, row, strict=True)) for row in cursor]
    for row in rows:
        row["on_hold"] = bool(row["on_hold"])
    output = json.dumps(rows, ensure_ascii=False, indent=2)
    elapsed = time.perf_counter() - started
    db.close()
    return elapsed, output


# -- Relances ----------------------------------------------------------------------------------


async def relances_import(db_path: Path, tsv: Path, settings: Settings) -> tuple[float, str]:
    """``import_invoices`` and the commit, on an open connection, as `relances import` does."""
    engine = storage.create_engine(f"sqlite+aiosqlite:///{db_path}")
    async with storage.sessionmaker(engine)() as session:
        await session.execute(text("SELECT 1"))  # the connection and its pragmas
        started = time.perf_counter()
        result = await import_invoices(session, tsv, settings=settings, user="bench")
        await session.commit()
        elapsed = time.perf_counter() - started
    await engine.dispose()
    return elapsed, str(result)


async def relances_list(db_path: Path, settings: Settings) -> tuple[float, str]:
    """What ``relances list --format json`` does once the database is open."""
    engine = storage.create_engine(f"sqlite+aiosqlite:///{db_path}")
    async with storage.sessionmaker(engine)() as session:
        await session.execute(text("SELECT 1"))
        started = time.perf_counter()
        rows = await reminders_table(session, settings, as_of=AS_OF)
        output = render_rows(rows, "json")
        elapsed = time.perf_counter() - started
    await engine.dispose()
    return elapsed, output


# -- peak memory, in a fresh process --------------------------------------------------------


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def rss_child(tsv: Path, db_path: Path) -> None:
    """Run in the subprocess: one import, then print the peak RSS in KiB.

    VmHWM, not ``ru_maxrss``: the latter keeps the peak of the process that
    forked this one (the benchmark, which holds a ledger by then) across the exec.
    """
    before = _status_kib("VmRSS")
    asyncio.run(relances_import(db_path, tsv, settings_from_data({})))
    print(json.dumps({"before_kib": before, "peak_kib": _status_kib("VmHWM")}))


def peak_rss(tsv: Path, db_path: Path) -> dict[str, int]:
    """The peak RSS of importing ``tsv`` into ``db_path`` in a fresh process."""
    done = subprocess.run([sys.executable, __file__, "--rss-child", str(tsv), str(db_path)],
                          check=True, capture_output=True, text=True)
    figures: dict[str, int] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


# -- the run ---------------------------------------------------------------------------------


def ratio(ours: list[float], bare: list[float]) -> float:
    return min(ours) / min(bare)


async def run(args: argparse.Namespace) -> int:
    settings = settings_from_data({})
    ok = True
    with tempfile.TemporaryDirectory(prefix="relances-bench-") as name:
        tmp = Path(name)
        tsv, empty = tmp / "export.tsv", tmp / "empty.db"
        started = time.perf_counter()
        write_export(tsv, args.rows, args.customers)
        await create_schema(empty)
        print(f"export of {args.rows:,} invoices over {args.customers:,} customers "
              f"({tsv.stat().st_size / 2**20:.1f} MiB) and an empty schema in "
              f"{time.perf_counter() - started:.1f} s")

        first, bare, again = [], [], []
        for repetition in range(args.repeat):
            ours_db, bare_db = tmp / f"ours{repetition}.db", tmp / f"bare{repetition}.db"
            shutil.copy(empty, ours_db)
            shutil.copy(empty, bare_db)
            elapsed, summary = await relances_import(ours_db, tsv, settings)
            first.append(elapsed)
            bare.append(bare_import(bare_db, tsv))
            again_elapsed, again_summary = await relances_import(ours_db, tsv, settings)
            again.append(again_elapsed)
            print(f"run {repetition + 1}: first import {elapsed:.2f} s, bare csv+executemany "
                  f"{bare[-1]:.2f} s, unchanged re-import {again_elapsed:.2f} s")
            if repetition == 0:
                print(f"  first import: {summary}\n  re-import: {again_summary}")
                if f"{args.rows} unchanged" not in again_summary:
                    print("  MISMATCH: the re-import changed something")
                    ok = False
                if invoices_of(ours_db) != invoices_of(bare_db):
                    print("  MISMATCH: the import and the bare baseline wrote different rows")
                    ok = False
            if repetition:
                ours_db.unlink()
                bare_db.unlink()
        listed, bare_listed = [], []
        for _ in range(args.repeat):
            elapsed, output = await relances_list(tmp / "ours0.db", settings)
            listed.append(elapsed)
            bare_elapsed, bare_output = bare_list(tmp / "ours0.db", settings)
            bare_listed.append(bare_elapsed)
        count = len(json.loads(output))
        print(f"list json of {count:,} overdue invoices ({len(output) / 2**20:.1f} MiB): "
              f"{min(listed):.2f} s; bare SELECT + json.dumps {min(bare_listed):.2f} s")
        if output != bare_output:
            print("  MISMATCH: `list --format json` and the bare SELECT differ")
            ok = False

        rss_line = "peak RSS: skipped (--skip-rss)"
        memory: list[float] = []
        if not args.skip_rss:
            big_tsv = tmp / "export-big.tsv"
            write_export(big_tsv, 4 * args.rows, args.customers)
            peaks = {}
            for name, export in (("small", tsv), ("big", big_tsv)):
                db = tmp / f"rss-{name}.db"
                shutil.copy(empty, db)
                peaks[name, "first"] = peak_rss(export, db)  # into an empty database
                peaks[name, "again"] = peak_rss(export, db)  # the same file again
            print(f"RSS of a fresh process before importing: "
                  f"{peaks['small', 'first']['before_kib'] / 1024:.0f} MiB")

            def mib(name: str, what: str) -> str:
                return f"{peaks[name, what]['peak_kib'] / 1024:.0f} MiB"

            def growth(what: str) -> str:
                return f"{peaks['big', what]['peak_kib'] / peaks['small', what]['peak_kib']:.2f}"

            rss_line = (f"peak RSS at {args.rows:,} and {4 * args.rows:,} rows: first import "
                        f"{mib('small', 'first')}, {mib('big', 'first')}, ratio {growth('first')}; "
                        f"unchanged re-import {mib('small', 'again')}, {mib('big', 'again')}, "
                        f"ratio {growth('again')} (goal: < 1.3)")
            memory = [peaks["big", what]["peak_kib"] / peaks["small", what]["peak_kib"]
                      for what in ("first", "again")]

    print(f"best of {args.repeat}: first import {min(first):.2f} s, unchanged re-import "
          f"{min(again):.2f} s, bare csv+executemany {min(bare):.2f} s; list json "
          f"{min(listed):.2f} s, bare SELECT {min(bare_listed):.2f} s")
    print(rss_line)
    print("goals: import first <= 3, import again <= 2, list json <= 3"
          + (", import memory < 1.3" if memory else ""))
    out = sys.stdout.write
    out(ratio_line("import first", ratio(first, bare)))
    out(ratio_line("import again", ratio(again, bare)))
    out(ratio_line("list json", ratio(listed, bare_listed)))
    if memory:
        out(ratio_line("import memory", max(memory)))
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument("--rss-child", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        rss_child(*args.rss_child)
        return 0
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
