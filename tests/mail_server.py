"""A real IMAP server (Dovecot) for the bounce tests, and an SMTP server that bounces.

``dovecot`` runs a private Dovecot instance of its own (folders, port,
one user, Maildir storage), as root, started and stopped by the fixture:
the recipe of ``shared/recipes.md``.  ``BouncingHandler`` is the tests'
SMTP server (aiosmtpd) behaving as a mail server does for an address that
does not exist behind it: it accepts the message, then sends the envelope
sender a delivery status notification laid out as Postfix writes them
(RFC 3464: ``multipart/report``, ``message/delivery-status``, the original
headers), which lands in the Dovecot mailbox.
"""

from __future__ import annotations

import datetime as dt
import imaplib
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

import pytest
from helpers import unavailable
from servers import RecordingHandler, free_port

BOUNCES_USER = "bounces"
BOUNCES_PASSWORD = "bounce-secret"
DOVECOT_CONF = """\
protocols = imap
listen = 127.0.0.1
base_dir = {base}/run
state_dir = {base}/state
log_path = {base}/log
ssl = no
disable_plaintext_auth = no
first_valid_uid = 100
auth_mechanisms = plain login
mail_location = maildir:{base}/mail/%u
default_login_user = dovenull
default_internal_user = dovecot
service imap-login {{
  inet_listener imap {{
    port = {port}
  }}
}}
service anvil {{
  chroot =
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {base}/users
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={base}/mail/%u
}}
"""


@dataclass
class Dovecot:
    host: str
    port: int
    user: str
    password: str

    def mailbox_options(self, **extra: Any) -> dict[str, Any]:
        """The ``mailboxes.<name>`` settings that read this server's INBOX."""
        return {"type": "imap", "host": self.host, "port": self.port, "security": "none",
                "username": self.user, "password_env": "RELANCES_TEST_IMAP_PASSWORD", **extra}

    def deliver(self, raw: bytes) -> None:
        """Put a message in the INBOX, as the mail server's local delivery does."""
        with imaplib.IMAP4(self.host, self.port) as client:
            client.login(self.user, self.password)
            status, answer = client.append("INBOX", "", imaplib.Time2Internaldate(time.time()), raw)
            assert status == "OK", answer

    def empty(self) -> None:
        """Delete every message of the INBOX (each test starts with an empty one)."""
        with imaplib.IMAP4(self.host, self.port) as client:
            client.login(self.user, self.password)
            status, answer = client.select("INBOX")
            if int(answer[0] or 0):
                client.store("1:*", "+FLAGS", r"(\Deleted)")
                client.expunge()

    def count(self) -> int:
        with imaplib.IMAP4(self.host, self.port) as client:
            client.login(self.user, self.password)
            status, answer = client.select("INBOX", readonly=True)
            assert status == "OK", answer
            return int(answer[0] or 0)


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    if shutil.which("dovecot") is None:
        unavailable("Dovecot is not installed; scripts/setup.sh --test installs dovecot-imapd")
    if os.geteuid() != 0:
        unavailable("a private Dovecot instance runs as root (it switches to its users)")
    # Dovecot's login and auth processes run as its own users: they must read its
    # folders and files whatever umask the tests' in-process runs left behind (0027).
    umask = os.umask(0o022)
    try:
        base, conf, port = _start_dovecot()
    finally:
        os.umask(umask)
    try:
        yield Dovecot("127.0.0.1", port, BOUNCES_USER, BOUNCES_PASSWORD)
    finally:
        subprocess.run(["dovecot", "-c", str(conf), "stop"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        shutil.rmtree(base, ignore_errors=True)


def _start_dovecot() -> tuple[Path, Path, int]:
    """A private Dovecot answering on a free port: its folder, its configuration, the port."""
    base = Path(tempfile.mkdtemp(prefix="relances-dovecot-"))
    base.chmod(0o755)
    port = free_port()
    for sub in ("run", "state", "mail"):
        (base / sub).mkdir()
    (base / "users").write_text(f"{BOUNCES_USER}:{{PLAIN}}{BOUNCES_PASSWORD}\n")
    conf = base / "dovecot.conf"
    conf.write_text(DOVECOT_CONF.format(base=base, port=port))
    shutil.chown(base / "mail", "dovecot", "dovecot")
    # Dovecot forks into the background: its output goes to a file, not to a pipe
    # that would stay open as long as it runs.
    with (base / "start.log").open("w") as output:
        started = subprocess.run(["dovecot", "-c", str(conf)], stdout=output, stderr=output,
                                 stdin=subprocess.DEVNULL)
    try:
        if started.returncode != 0:
            unavailable(f"dovecot did not start: {(base / 'start.log').read_text().strip()}")
        deadline = time.monotonic() + 15
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                    if conn.recv(100).startswith(b"* OK"):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                log = (base / "log").read_text() if (base / "log").exists() else ""
                unavailable(f"dovecot did not answer on port {port}: {log[-500:]}")
            time.sleep(0.2)
    except BaseException:
        subprocess.run(["dovecot", "-c", str(conf), "stop"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        shutil.rmtree(base, ignore_errors=True)
        raise
    return base, conf, port


def postfix_dsn(original: bytes, *, sender: str, recipient: str, status: str = "5.1.1",
                diagnostic: str | None = None, action: str = "failed",
                reporting_mta: str = "mx.client.example") -> bytes:
    """The delivery status notification Postfix sends the envelope sender when
    ``recipient`` does not exist: its three parts, as Postfix lays them out."""
    code = "550" if status.startswith("5") else "450"
    diagnostic = diagnostic or (f"{code} {status} <{recipient}>: Recipient address rejected: "
                                "User unknown in local recipient table")
    headers = re.split(rb"\r?\n\r?\n", original, maxsplit=1)[0].decode("utf-8", "replace")
    report = MIMEMultipart("report", report_type="delivery-status")
    report["Return-Path"] = "<>"
    report["From"] = f"MAILER-DAEMON@{reporting_mta} (Mail Delivery System)"
    report["To"] = sender
    report["Subject"] = ("Undelivered Mail Returned to Sender" if action == "failed"
                         else "Delayed Mail (still being retried)")
    report["Date"] = format_datetime(dt.datetime.now(dt.UTC))
    report["Message-ID"] = make_msgid(domain=reporting_mta)
    report["Auto-Submitted"] = "auto-replied"
    report.attach(MIMEText(
        f"This is the mail system at host {reporting_mta}.\n\n"
        "I'm sorry to have to inform you that your message could not\n"
        "be delivered to one or more recipients.\n\n"
        f"<{recipient}>: host {reporting_mta} said: {diagnostic}\n", "plain"))
    per_message, per_recipient = Message(), Message()
    per_message["Reporting-MTA"] = f"dns; {reporting_mta}"
    per_message["X-Postfix-Queue-ID"] = "4Q2B3C1D2E"
    per_message["X-Postfix-Sender"] = f"rfc822; {sender}"
    per_message["Arrival-Date"] = format_datetime(dt.datetime.now(dt.UTC))
    per_recipient["Final-Recipient"] = f"rfc822; {recipient}"
    per_recipient["Original-Recipient"] = f"rfc822;{recipient}"
    per_recipient["Action"] = action
    per_recipient["Status"] = status
    per_recipient["Remote-MTA"] = f"dns; {reporting_mta}"
    per_recipient["Diagnostic-Code"] = f"smtp; {diagnostic}"
    delivery_status = MIMEBase("message", "delivery-status")
    delivery_status.set_payload([per_message, per_recipient])
    delivery_status["Content-Description"] = "Delivery report"
    report.attach(delivery_status)
    undelivered = MIMEText(headers + "\n", "rfc822-headers")
    undelivered["Content-Description"] = "Undelivered Message Headers"
    report.attach(undelivered)
    return report.as_bytes()


@dataclass
class BouncingHandler(RecordingHandler):
    """Accepts every message; for each recipient in ``unknown`` sends the envelope
    sender a DSN through ``bounce`` (into the Dovecot mailbox), as a mail server does
    when it finds out after accepting."""

    unknown: set[str] = field(default_factory=set)
    bounce: Callable[[bytes], None] | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        if reply.startswith("250") and self.bounce is not None:
            for recipient in envelope.rcpt_tos:
                if recipient in self.unknown:
                    self.bounce(postfix_dsn(envelope.original_content, sender=envelope.mail_from,
                                            recipient=recipient))
        return reply
