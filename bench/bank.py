"""Reading a bank statement into the ledger, against what a user would write by hand.

Creates a SQLite database with the real schema (``storage.upgrade``,
Alembic) holding ``--invoices`` open invoices over ``--customers``
customers, one in five of whom has a known IBAN, and writes a camt.053.001.08
statement of ``--entries`` entries as a French bank sends it: 40 % quote the
invoice's creditor reference (``RF…``, structured), 25 % name the invoice
number in the free text, 10 % come from a known IBAN with the amount of one
of that customer's invoices, 15 % fit nothing (to review), 10 % are debits.
Then it measures, side by side in this one process:

- **Relances**: ``read_statement`` (the camt reader: safe parse, every field
  checked, identities) and ``import_statement`` (already read?, matching by
  each rule, payments, history, review holds), and the commit, on a fresh
  copy of the database;
- **bare baseline**, as the issue defines it: a bare lxml parse of the same
  file (same safe parser options) and, per entry, one indexed lookup — the
  invoice by id (the RF reference's body) or by number (a regular
  expression on the text), or the customer by IBAN — on a connection with
  the pragmas of ``storage.create_engine``.

The counts are checked: as many entries matched as were written to match,
as many to review and debits; a second import of the same statement applies
nothing.  A difference prints MISMATCH and the exit status is 1.  Times are
the best of ``--repeat`` runs, the two sides interleaved; the ratio is what
to compare between machines, not the seconds.

    .venv/bin/python bench/bank.py [--invoices 100000] [--customers 5000] [--entries 50000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import re
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from xml.sax.saxutils import escape

from _lines import ratio_line
from lxml import etree
from schwifty import IBAN
from sqlalchemy import text
from stdnum import iso11649

from relances.daemon import storage
from relances.daemon.bank.apply import import_statement
from relances.daemon.bank.read import read_statement
from relances.daemon.config import settings_from_data
from relances.daemon.ledger.references import invoice_reference

ON = dt.date(2026, 11, 30)
ACCOUNT = "FR7630004000031234567890143"
CAMT = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"
NUMBER = re.compile(r"COD_F\d{7}")


def iban_of(i: int) -> str:
    return str(IBAN.generate("FR", bank_code="30006", account_code=f"{i:011d}"))


# -- the ledger ---------------------------------------------------------------------------


def fill(db_path: Path, invoices: int, customers: int, seed: int = 7) -> list[tuple[int, str, int, int]]:
    """Customers, open invoices and IBANs; returns (id, number, customer id, cents) per invoice."""
    rng = random.Random(seed)
    now = dt.datetime.now(dt.UTC).isoformat(sep=" ")
    db = sqlite3.connect(db_path)
    db.execute("BEGIN")
    db.executemany("INSERT INTO customers (id, code, name, created_at, updated_at) "
                   "VALUES (?, ?, ?, ?, ?)",
                   [(c, f"CLI{c:05d}", f"CLIENT {c}", now, now) for c in range(1, customers + 1)])
    rows = []
    for i in range(1, invoices + 1):
        due = ON - dt.timedelta(days=rng.randint(1, 400))
        cents = min(max(int(rng.lognormvariate(11.0, 1.3)), 500), 9_999_999)
        rows.append((i, f"COD_F{i:07d}", rng.randint(1, customers), (due - dt.timedelta(days=30))
                     .isoformat(), due.isoformat(), cents))
    db.executemany("INSERT INTO invoices (id, number, customer_id, invoice_date, due_date, total, "
                   "remaining, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   [(*r, r[5], now, now) for r in rows])
    db.executemany("INSERT INTO customer_ibans (customer_id, iban, source, created_at) "
                   "VALUES (?, ?, 'import', ?)",
                   [(c, iban_of(c), now) for c in range(1, customers + 1, 5)])
    db.execute("COMMIT")
    db.close()
    return [(r[0], r[1], r[2], r[5]) for r in rows]


# -- the statement ------------------------------------------------------------------------


def _amount(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _ntry(n: int, cents: int, credit: bool, *, name: str, iban: str | None, ustrd: str = "",
          ref: str = "") -> str:
    party = "Dbtr" if credit else "Cdtr"
    account = f"<{party}Acct><Id><IBAN>{iban}</IBAN></Id></{party}Acct>" if iban else ""
    remittance = (f"<RmtInf><Strd><CdtrRefInf><Tp><CdOrPrtry><Cd>SCOR</Cd></CdOrPrtry></Tp>"
                  f"<Ref>{ref}</Ref></CdtrRefInf></Strd></RmtInf>" if ref
                  else f"<RmtInf><Ustrd>{escape(ustrd)}</Ustrd></RmtInf>")
    return (f"<Ntry><Amt Ccy=\"EUR\">{_amount(cents)}</Amt><CdtDbtInd>{'CRDT' if credit else 'DBIT'}"
            f"</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts><BookgDt><Dt>{ON}</Dt></BookgDt>"
            f"<ValDt><Dt>{ON}</Dt></ValDt><AcctSvcrRef>BQ{n:09d}</AcctSvcrRef>"
            f"<BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>RCDT</Cd><SubFmlyCd>ESCT</SubFmlyCd></Fmly>"
            f"</Domn></BkTxCd><NtryDtls><TxDtls><Refs><EndToEndId>E2E{n:09d}</EndToEndId></Refs>"
            f"<RltdPties><{party}><Pty><Nm>{escape(name)}</Nm></Pty></{party}>{account}</RltdPties>"
            f"{remittance}</TxDtls></NtryDtls></Ntry>")


def write_statement(path: Path, invoices: list[tuple[int, str, int, int]], entries: int,
                    customers: int, seed: int = 11) -> dict[str, int]:
    """The camt.053 file; returns how many entries should match, wait and be debits."""
    rng = random.Random(seed)
    pool = iter(rng.sample(invoices, len(invoices)))
    by_customer: dict[int, list[tuple[int, str, int, int]]] = {}
    for invoice in invoices:
        by_customer.setdefault(invoice[2], []).append(invoice)
    used: set[int] = set()  # each invoice is paid by one entry at most
    counts = {"matched": 0, "review": 0, "debits": 0}
    parts = []
    for n in range(entries):
        kind = rng.random()
        invoice_id, number, customer, cents = next(i for i in pool if i[0] not in used)
        if kind < 0.75:
            used.add(invoice_id)
        if kind < 0.40:
            parts.append(_ntry(n, cents, True, name=f"CLIENT {customer}", iban=None,
                               ref=invoice_reference(number, invoice_id)))
            counts["matched"] += 1
        elif kind < 0.65:
            parts.append(_ntry(n, cents, True, name=f"CLIENT {customer}", iban=None,
                               ustrd=f"VIR SEPA REGLEMENT FACTURE {number} MERCI"))
            counts["matched"] += 1
        elif kind < 0.75:
            used.discard(invoice_id)
            payer = 1 + 5 * rng.randrange((customers + 4) // 5)
            own = [i for i in by_customer.get(payer, []) if i[0] not in used]
            amounts = [i[3] for i in own]
            if own and amounts.count(own[0][3]) == 1:
                parts.append(_ntry(n, own[0][3], True, name=f"CLIENT {payer}", iban=iban_of(payer),
                                   ustrd="VIREMENT"))
                used.add(own[0][0])
                counts["matched"] += 1
            else:
                parts.append(_ntry(n, 12345, True, name="INCONNU", iban=None, ustrd="VIREMENT"))
                counts["review"] += 1
        elif kind < 0.90:
            parts.append(_ntry(n, 100 + rng.randrange(10_000), True, name="M. INCONNU",
                               iban=iban_of(900_000 + n), ustrd="VIREMENT RECU"))
            counts["review"] += 1
        else:
            parts.append(_ntry(n, 100 + rng.randrange(100_000), False, name="FOURNISSEUR",
                               iban=iban_of(800_000 + n), ustrd="PRLV SEPA"))
            counts["debits"] += 1
    path.write_text(
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="{CAMT}"><BkToCstmrStmt>'
        f"<GrpHdr><MsgId>BENCH</MsgId><CreDtTm>{ON}T20:00:00</CreDtTm></GrpHdr>"
        f"<Stmt><Id>STMT-BENCH</Id><CreDtTm>{ON}T20:00:00</CreDtTm><Acct><Id><IBAN>{ACCOUNT}"
        f"</IBAN></Id></Acct>{''.join(parts)}</Stmt></BkToCstmrStmt></Document>\n",
        encoding="utf-8")
    return counts


# -- the bare baseline ---------------------------------------------------------------------


def bare(db_path: Path, statement: Path) -> tuple[float, int]:
    """A bare lxml parse and one indexed lookup per entry; returns the time and the hits."""
    db = sqlite3.connect(db_path, isolation_level=None)
    for pragma in ("journal_mode=WAL", "foreign_keys=ON", "busy_timeout=30000", "synchronous=NORMAL"):
        db.execute(f"PRAGMA {pragma}")
    ns = {"c": CAMT}
    started = time.perf_counter()
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    root = etree.parse(str(statement), parser).getroot()
    hits = 0
    for ntry in root.iterfind("c:BkToCstmrStmt/c:Stmt/c:Ntry", ns):
        if ntry.findtext("c:CdtDbtInd", namespaces=ns) != "CRDT":
            continue
        tx = ntry.find("c:NtryDtls/c:TxDtls", ns)
        ref = tx.findtext("c:RmtInf/c:Strd/c:CdtrRefInf/c:Ref", namespaces=ns)
        if ref:
            body = iso11649.compact(ref)[4:]
            row = db.execute("SELECT id, remaining FROM invoices WHERE id = ?",
                             (int(body[1:]),)).fetchone()
        elif found := NUMBER.search(tx.findtext("c:RmtInf/c:Ustrd", default="", namespaces=ns)):
            row = db.execute("SELECT id, remaining FROM invoices WHERE number = ?",
                             (found.group(),)).fetchone()
        else:
            iban = tx.findtext("c:RltdPties/c:DbtrAcct/c:Id/c:IBAN", namespaces=ns)
            row = db.execute("SELECT customer_id FROM customer_ibans WHERE iban = ?", (iban,)).fetchone()
        hits += row is not None
    elapsed = time.perf_counter() - started
    db.close()
    return elapsed, hits


# -- Relances ----------------------------------------------------------------------------------


async def relances(db_path: Path, statement: Path) -> tuple[float, object]:
    """``relances import bank FILE``'s work once the database is open: read, apply, commit."""
    settings = settings_from_data({"database": {"url": f"sqlite+aiosqlite:///{db_path}"}})
    engine = storage.create_engine(settings.database_url)
    async with storage.sessionmaker(engine)() as session:
        await session.execute(text("SELECT 1"))  # the connection and its pragmas
        started = time.perf_counter()
        read = read_statement(statement)
        result = await import_statement(session, settings, read, user="bench", as_of=ON)
        await session.commit()
        elapsed = time.perf_counter() - started
    await engine.dispose()
    return elapsed, result


async def run(args: argparse.Namespace) -> int:
    ok = True
    with tempfile.TemporaryDirectory(prefix="relances-bench-bank-") as name:
        tmp = Path(name)
        empty, statement = tmp / "ledger.db", tmp / "releve.xml"
        started = time.perf_counter()
        engine = storage.create_engine(f"sqlite+aiosqlite:///{empty}")
        await storage.upgrade(engine)
        await engine.dispose()
        invoices = fill(empty, args.invoices, args.customers)
        expected = write_statement(statement, invoices, args.entries, args.customers)
        print(f"{args.invoices:,} open invoices over {args.customers:,} customers, a camt.053 of "
              f"{args.entries:,} entries ({statement.stat().st_size / 2**20:.1f} MiB), in "
              f"{time.perf_counter() - started:.1f} s; expected {expected}")
        ours, baseline = [], []
        for repetition in range(args.repeat):
            db = tmp / f"run{repetition}.db"
            shutil.copy(empty, db)
            elapsed, result = await relances(db, statement)
            ours.append(elapsed)
            bare_elapsed, hits = bare(db, statement)
            baseline.append(bare_elapsed)
            print(f"run {repetition + 1}: Relances {elapsed:.2f} s, bare parse + lookups "
                  f"{bare_elapsed:.2f} s ({hits:,} found)")
            if repetition == 0:
                print(f"  {result}")
                got = {k: getattr(result, k) for k in ("matched", "review", "debits")}
                if got != expected:
                    print(f"  MISMATCH: expected {expected}, got {got}")
                    ok = False
                _, again = await relances(db, statement)
                print(f"  again: {again}")
                if again.already != args.entries:
                    print("  MISMATCH: a second import of the statement applied something")
                    ok = False
            db.unlink()
    ratio = min(ours) / min(baseline)
    print(f"best of {args.repeat}: Relances {min(ours):.2f} s, bare {min(baseline):.2f} s")
    print("goal: bank <= 3")
    sys.stdout.write(ratio_line("bank", ratio))
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--invoices", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--entries", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
