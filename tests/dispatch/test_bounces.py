"""A bounce undoes the email it is about; replies and auto-replies are written down.

The mail server is the tests' aiosmtpd (STARTTLS, AUTH), which accepts
every message and then, for an address that does not exist, sends a
Postfix-style delivery status notification to the envelope sender; that
DSN lands in a real Dovecot (``tests/mail_server.py``), which ``relances
mail`` reads over IMAP.  On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_helpers import (
    daemon_settings,
    history,
    invoices_tsv,
    ledger,
    number_of,
    query,
    reminder,
    smtp_controller,
)
from helpers import Cli
from mail_server import BouncingHandler, Dovecot, dovecot, postfix_dsn  # noqa: F401 - fixture
from servers import SMTP_PASSWORD, SmtpServer, free_port, tls_files  # noqa: F401 - fixture
from sqlalchemy import select

from relances.daemon.models import Customer, InboundMessage, Note, Reminder

pytestmark = pytest.mark.timeout(180)

NUMBER = number_of("K", 1)
EMAIL = "compta1@client1.example"
SENDER = "relances@entreprise.example"  # smtp_server.channel_options()'s from_address


@pytest.fixture
def bouncing_smtp(tls_files: tuple[Path, Path], dovecot: Dovecot,
                  monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpServer]:
    monkeypatch.setenv("RELANCES_TEST_SMTP_PASSWORD", SMTP_PASSWORD)
    monkeypatch.setenv("RELANCES_TEST_IMAP_PASSWORD", dovecot.password)
    dovecot.empty()
    handler = BouncingHandler(bounce=dovecot.deliver)
    port = free_port()
    controller = smtp_controller(handler, port, tls_files)
    try:
        yield SmtpServer("127.0.0.1", port, handler, tls_files[0], "starttls")
    finally:
        time.sleep(0.2)
        controller.stop()


def one_letter(tmp_path: Path, url: str, smtp: SmtpServer, dovecot: Dovecot,
               **email: Any) -> Cli:
    settings = daemon_settings(tmp_path / "settings.yaml", url, ["email", "archive"],
                               {"email": smtp.channel_options(**email)}, quick=True,
                               more={"mailboxes": {"bounces": dovecot.mailbox_options()}})
    cli = ledger(settings, invoices_tsv(tmp_path / "invoices.tsv", 1))
    cli("escalate")
    return cli


def inbound(url: str) -> list[tuple[str, bool]]:
    return [(kind, reminder_id is not None) for kind, reminder_id in query(
        url, select(InboundMessage.kind, InboundMessage.reminder_id).order_by(InboundMessage.id))]


def bounced_address(url: str) -> str | None:
    ((address,),) = query(url, select(Customer.email_bounce).where(Customer.code == "K0001"))
    return address


def test_a_bounce_undoes_the_email_and_the_next_channel_sends(
        tmp_path: Path, database_url: str, bouncing_smtp: SmtpServer, dovecot: Dovecot) -> None:
    bouncing_smtp.handler.unknown.add(EMAIL)  # type: ignore[attr-defined]
    cli = one_letter(tmp_path, database_url, bouncing_smtp, dovecot)
    before = dovecot.count()
    assert "1 sent (1 by email)" in cli(f"send --invoice {NUMBER}").stdout
    sent = reminder(database_url, NUMBER)
    assert sent["state"] == "sent" and sent["last_reminded_on"] is not None
    assert dovecot.count() == before + 1  # the server's DSN, in the mailbox

    out = cli("mail").stdout
    assert "1 bounce; 1 bounced reminders undone" in out
    row = reminder(database_url, NUMBER)
    assert (row["state"], row["channel_index"]) == ("pending", 1)
    assert (row["last_reminded_on"], row["last_reminded_level"]) == (None, None)
    assert bounced_address(database_url) == EMAIL
    assert history(database_url, NUMBER)[-1] == (
        "Email rejeté : 550 5.1.1 utilisateur inconnu — envoi par archive")

    # Read again, the same DSN changes nothing: it was classified once.
    assert "nothing new" in cli("mail").stdout
    assert inbound(database_url)[-1] == ("bounce", True)

    out = cli(f"send --invoice {NUMBER}").stdout
    assert "1 sent (1 by archive)" in out
    row = reminder(database_url, NUMBER)
    assert (row["state"], row["sent_channel"]) == ("sent", "archive")
    assert row["last_reminded_on"] is not None
    assert len(bouncing_smtp.handler.messages) == 1  # the bounced address is not tried again


def test_a_bounce_of_the_bcc_copy_is_not_a_letter_that_did_not_leave(
        tmp_path: Path, database_url: str, bouncing_smtp: SmtpServer, dovecot: Dovecot) -> None:
    copy = "archives@entreprise.example"
    bouncing_smtp.handler.unknown.add(copy)  # type: ignore[attr-defined]
    cli = one_letter(tmp_path, database_url, bouncing_smtp, dovecot, bcc=copy)
    assert "1 sent (1 by email)" in cli(f"send --invoice {NUMBER}").stdout
    assert "1 bounce" in cli("mail").stdout
    row = reminder(database_url, NUMBER)
    assert row["state"] == "sent" and row["last_reminded_on"] is not None
    assert bounced_address(database_url) is None
    assert history(database_url, NUMBER)[-1].startswith(
        "Email rejeté pour une copie ou une autre adresse : 550 5.1.1")


def test_replies_and_auto_replies_are_written_in_the_history(
        tmp_path: Path, database_url: str, bouncing_smtp: SmtpServer, dovecot: Dovecot) -> None:
    cli = one_letter(tmp_path, database_url, bouncing_smtp, dovecot)
    cli(f"send --invoice {NUMBER}")
    (received,) = bouncing_smtp.handler.messages
    ours = str(received.message["Message-ID"])
    dovecot.deliver(
        f"From: Client 1 <{EMAIL}>\r\nTo: {SENDER}\r\nSubject: Absence du bureau\r\n"
        f"Auto-Submitted: auto-replied\r\nIn-Reply-To: {ours}\r\n\r\nDe retour lundi.\r\n"
        .encode())
    dovecot.deliver(
        f"From: Client 1 <{EMAIL}>\r\nTo: {SENDER}\r\nSubject: Re: Relance\r\n"
        f"In-Reply-To: {ours}\r\nReferences: {ours}\r\n\r\nLe virement est parti hier.\r\n"
        .encode())
    dovecot.deliver(f"From: someone@else.example\r\nTo: {SENDER}\r\nSubject: Offre\r\n\r\n"
                    "Rien à voir.\r\n".encode())
    assert "1 auto-reply, 1 other, 1 reply" in cli("mail").stdout
    lines = history(database_url, NUMBER)
    assert "Réponse automatique reçue : Absence du bureau" in lines
    until = dt.date.today() + dt.timedelta(days=14)
    assert lines[-1] == ("Réponse du client reçue : Re: Relance — relances suspendues "
                         f"jusqu'au {until:%d/%m/%Y}")
    assert reminder(database_url, NUMBER)["state"] == "sent"
    assert [kind for kind, _ in inbound(database_url)][-3:] == ["auto-reply", "reply", "other"]
    card = cli("customer K0001").stdout
    assert f"Relances   suspendues jusqu'au {until:%d/%m/%Y} (réponse du client)" in card
    assert query(database_url, select(Note.kind, Note.text)) == [
        ("reply", "Re: Relance\nLe virement est parti hier.")]

    # The reply pauses the chase: the next level's reminder waits until a person resumes.
    cli(f"set-level {NUMBER} 2")
    assert "paused: 1 customers replied to a reminder (K0001)" in cli("send --dry-run").stdout
    assert "nothing to send" in cli(f"send --invoice {NUMBER}").stdout
    assert "K0001: reminders resumed" in cli("customer K0001 --resume").stdout
    assert "1 sent (1 by archive)" in cli(f"send --invoice {NUMBER}").stdout  # level 2's channel
    assert history(database_url, NUMBER)[-1].startswith("Relance niveau 2")


def test_a_message_from_a_customers_address_is_a_reply_and_an_auto_reply_does_not_pause(
        tmp_path: Path, database_url: str, bouncing_smtp: SmtpServer, dovecot: Dovecot) -> None:
    cli = one_letter(tmp_path, database_url, bouncing_smtp, dovecot)
    cli(f"send --invoice {NUMBER}")
    dovecot.deliver(f"From: {EMAIL.upper()}\r\nTo: {SENDER}\r\nSubject: Absent\r\n"
                    "Auto-Submitted: auto-replied\r\n\r\nAbsent.\r\n".encode())
    assert "1 auto-reply" in cli("mail").stdout
    assert paused_until(database_url) is None
    dovecot.deliver(
        f"From: Client 1 <{EMAIL.upper()}>\r\nTo: {SENDER}\r\nSubject: Facture K-F0001\r\n"
        "Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n"
        "\r\n".encode() + "Nous contestons le montant.\r\n\r\nLe 1 déc. 2026, Relances a écrit :\r\n"
        "> Relance niveau 1\r\n".encode("iso-8859-1"))
    dovecot.deliver(f"From: inconnu@ailleurs.example\r\nTo: {SENDER}\r\nSubject: Bonjour\r\n"
                    "\r\nRien.\r\n".encode())
    assert "1 other, 1 reply" in cli("mail").stdout
    assert paused_until(database_url) == dt.date.today() + dt.timedelta(days=14)
    notes = query(database_url, select(Note.kind, Note.text))
    assert notes == [("reply", "Facture K-F0001\nNous contestons le montant.")]


def paused_until(url: str) -> dt.date | None:
    ((until,),) = query(url, select(Customer.paused_until).where(Customer.code == "K0001"))
    return until if until is None or isinstance(until, dt.date) else dt.date.fromisoformat(until)


def test_a_maildir_mailbox_is_read_the_same_way(
        tmp_path: Path, database_url: str, bouncing_smtp: SmtpServer, dovecot: Dovecot) -> None:
    maildir = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    settings = daemon_settings(tmp_path / "settings.yaml", database_url, ["email", "archive"],
                               {"email": bouncing_smtp.channel_options()}, quick=True,
                               more={"mailboxes": {"local": {"type": "maildir",
                                                             "path": str(maildir)}}})
    cli = ledger(settings, invoices_tsv(tmp_path / "invoices.tsv", 1))
    cli("escalate")
    cli(f"send --invoice {NUMBER}")
    (received,) = bouncing_smtp.handler.messages
    dsn = postfix_dsn(received.message.as_bytes(), sender=SENDER, recipient=EMAIL,
                      status="5.2.2", diagnostic="552 5.2.2 mailbox full")
    (maildir / "new" / "1764800000.M1P1.mx").write_bytes(dsn)
    assert "1 bounce; 1 bounced reminders undone" in cli("mail").stdout
    assert history(database_url, NUMBER)[-1] == (
        "Email rejeté : 552 5.2.2 boîte pleine — envoi par archive")
    assert (maildir / "new" / "1764800000.M1P1.mx").exists()  # left for people to read
    assert "nothing new" in cli("mail").stdout


def test_an_unreadable_mailbox_is_one_line_and_exit_1(tmp_path: Path, database_url: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELANCES_TEST_IMAP_PASSWORD", "x")
    settings = daemon_settings(tmp_path / "settings.yaml", database_url, ["archive"], {},
                               more={"mailboxes": {"bounces": {
                                   "type": "imap", "host": "127.0.0.1", "port": free_port(),
                                   "security": "none", "username": "u",
                                   "password_env": "RELANCES_TEST_IMAP_PASSWORD",
                                   "timeout": 5}}})
    cli = Cli(settings)
    cli("init")
    result = cli("mail", ok=False)
    assert result.exit_code == 1
    assert "mailbox bounces (u@127.0.0.1:" in result.stderr and "cannot connect" in result.stderr


@pytest.mark.parametrize(("mailbox", "error"), [
    ({"type": "pop3"}, "mailboxes.bounces.type: must be imap or maildir, got 'pop3'"),
    ({"type": "imap", "host": "mx", "username": "u", "passwd": "x"},
     "mailboxes.bounces.passwd: unknown option; known: "),
    ({"type": "imap", "host": "mx", "username": "u", "password_env": "RELANCES_NO_SUCH_VAR"},
     "mailboxes.bounces.password_env: the environment has no variable 'RELANCES_NO_SUCH_VAR'"),
    ({"type": "imap", "host": "mx", "username": "u", "password_env": "HOME", "port": 0},
     "mailboxes.bounces.port: must be a port number, got 0"),
    ({"type": "maildir"}, "mailboxes.bounces.path: is required"),
])
def test_check_config_refuses_a_bad_mailbox_naming_its_key(
        tmp_path: Path, mailbox: dict[str, Any], error: str) -> None:
    settings = daemon_settings(tmp_path / "settings.yaml", "sqlite+aiosqlite:///"
                               f"{tmp_path / 'r.db'}", ["archive"], {},
                               more={"mailboxes": {"bounces": mailbox}})
    result = Cli(settings)("check-config", ok=False)
    assert result.exit_code != 0
    (line,) = [line for line in result.stderr.splitlines() if "mailboxes.bounces" in line]
    assert error in line and "settings.yaml" in line


def test_a_reminder_queued_before_the_reply_is_cancelled_when_taken(
        tmp_path: Path, database_url: str, bouncing_smtp: SmtpServer, dovecot: Dovecot) -> None:
    cli = one_letter(tmp_path, database_url, bouncing_smtp, dovecot)
    cli(f"send --invoice {NUMBER}")
    (received,) = bouncing_smtp.handler.messages
    cli(f"set-level {NUMBER} 2")
    asyncio.run(_queue(cli.settings))  # the daemon's earlier run queued level 2
    assert level2(database_url) == ("pending", None)
    dovecot.deliver(f"From: {EMAIL}\r\nTo: {SENDER}\r\nSubject: Re: Relance\r\n"
                    f"In-Reply-To: {received.message['Message-ID']}\r\n\r\nC'est payé.\r\n".encode())
    assert "1 reply" in cli("mail").stdout
    out = cli(f"send --invoice {NUMBER}").stdout
    assert "1 cancelled" in out
    state, error = level2(database_url)
    assert state == "cancelled" and "the customer replied" in error


def level2(url: str) -> tuple[str, str | None]:
    ((state, error),) = query(url, select(Reminder.state, Reminder.last_error)
                              .where(Reminder.level == 2))
    return state, error


async def _queue(settings: Path) -> None:
    from relances.daemon.config import load_settings
    from relances.daemon.dispatch import outbox
    from relances.daemon.storage import App

    app = App(settings=load_settings(settings), user="daemon")
    try:
        async with app.sessions.begin() as session:
            await outbox.queue(session, app.settings, outbox.Request(), user="daemon")
    finally:
        await app.close()


def test_two_addresses_bouncing_in_two_reports_undo_the_email(
        tmp_path: Path, database_url: str, bouncing_smtp: SmtpServer, dovecot: Dovecot) -> None:
    second = "direction1@client1.example"
    bouncing_smtp.handler.unknown.update({EMAIL, second})  # type: ignore[attr-defined]
    cli = one_letter(tmp_path, database_url, bouncing_smtp, dovecot)
    asyncio.run(_execute(database_url, f"UPDATE customers SET email = '{EMAIL}; {second}'"))
    assert "1 sent (1 by email)" in cli(f"send --invoice {NUMBER}").stdout
    assert "2 bounce; 1 bounced reminders undone" in cli("mail").stdout
    lines = history(database_url, NUMBER)
    assert lines[-2].startswith("Email rejeté pour une copie ou une autre adresse : 550 5.1.1")
    assert lines[-1] == "Email rejeté : 550 5.1.1 utilisateur inconnu — envoi par archive"
    assert reminder(database_url, NUMBER)["state"] == "pending"


async def _execute(url: str, sql: str) -> None:
    from sqlalchemy import text

    from relances.daemon import storage

    engine = storage.create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()
