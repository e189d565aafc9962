"""Revision 0007 (bounces) upgrades a 0006 database, and its sent emails can still bounce.

A database made by the previous release (revision 0006) holds an email
reminder that left before bounces were read: its stamp kept no undo.
After ``relances init`` a bounce of that email still sends the reminder
by the level's next channel and marks the address, and the history says
the stamp was left as it was, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

from helpers import Cli, write_settings
from mail_server import postfix_dsn
from sqlalchemy import text
from test_migrations import HEAD, empty_database  # noqa: F401 - fixture

from relances.channels.smtp import message_id_for
from relances.daemon import storage

NOW = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC)
SENT_ID = message_id_for("letter:F-0006:1:email,archive", "entreprise.example")
RELEASE_0006 = [
    "INSERT INTO customers (id, code, name, email, language, kind, opted_out, created_at, "
    "updated_at) VALUES (1, 'INT01', 'INTEL', 'compta@intel.example', 'fr', 'business', :no, "
    ":now, :now)",
    "INSERT INTO invoices (id, number, customer_id, invoice_date, due_date, total, remaining, "
    "level, last_reminded_on, last_reminded_level, on_hold, reminded_here, created_at, "
    "updated_at) VALUES (1, 'F-0006', 1, '2026-08-01', '2026-09-01', 120000, 120000, 1, "
    "'2026-11-30', 1, :no, :yes, :now, :now)",
    "INSERT INTO reminders (id, key, kind, customer_id, invoice_id, level, channels, "
    "channel_index, state, attempts, next_attempt_at, requested_by, created_at, sent_at, "
    "sent_channel, reference) VALUES (1, 'letter:F-0006:1:email,archive', 'letter', 1, 1, 1, "
    "'email,archive', 0, 'sent', 1, :now, 'daemon', :now, :now, 'email', :ref)",
]


async def _database_of_release_0006(url: str) -> None:
    engine = storage.create_engine(url)
    try:
        assert await storage.upgrade(engine, "0006") == (None, "0006")
        async with engine.begin() as conn:
            for statement in RELEASE_0006:
                await conn.execute(text(statement),
                                   {"yes": True, "no": False, "now": NOW, "ref": SENT_ID})
    finally:
        await engine.dispose()


async def _rows(url: str, sql: str) -> list[tuple[object, ...]]:
    engine = storage.create_engine(url)
    try:
        async with engine.connect() as conn:
            return [tuple(row) for row in await conn.execute(text(sql))]
    finally:
        await engine.dispose()


def test_a_0006_database_upgrades_and_an_email_sent_before_can_bounce(
        empty_database: str, tmp_path: Path) -> None:  # noqa: F811
    asyncio.run(_database_of_release_0006(empty_database))
    maildir = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    cli = Cli(write_settings(tmp_path / "settings.yaml", {
        "database.url": empty_database, "channels.email": {"host": "127.0.0.1",
                                                           "from_address": "r@entreprise.example"},
        "mailboxes": {"bounces": {"type": "maildir", "path": str(maildir)}}}))
    assert f"database upgraded from revision 0006 to {HEAD}" in cli("init").stdout
    original = (f"Message-ID: {SENT_ID}\r\nTo: compta@intel.example\r\n"
                "Subject: Relance facture F-0006\r\n\r\nBonjour\r\n").encode()
    (maildir / "new" / "1.M1.mx").write_bytes(postfix_dsn(
        original, sender="r@entreprise.example", recipient="compta@intel.example"))
    assert "1 bounce; 1 bounced reminders undone" in cli("mail").stdout
    assert asyncio.run(_rows(empty_database,
                             "SELECT state, channel_index, stamp_undo FROM reminders")) == [
        ("pending", 1, None)]
    assert asyncio.run(_rows(empty_database, "SELECT email_bounce FROM customers")) == [
        ("compta@intel.example",)]
    assert asyncio.run(_rows(empty_database, "SELECT last_reminded_on FROM invoices"))[0][0] \
        in (dt.date(2026, 11, 30), "2026-11-30")  # no undo was kept: the stamp stays
    assert ("Email rejeté : 550 5.1.1 utilisateur inconnu — envoi par archive (la date de "
            "relance reste : elle a été posée avant cette version)") in cli("history F-0006").stdout
