"""SMTP sending shared by the ``email`` channel and the fax gateway.

Messages are built with :class:`email.message.EmailMessage` under
``email.policy.SMTP``: addresses go through
:class:`email.headerregistry.Address` and header values containing CR or LF
are refused, so a customer's name or address cannot inject headers.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import ssl
import time
from dataclasses import dataclass
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, localtime
from pathlib import Path
from typing import Any

import aiosmtplib

from relances.channels._options import Options
from relances.plugins import Attachment, ChannelConfigError, Delivery, DeliveryError

logger = logging.getLogger(__name__)

SMTP_OPTIONS = frozenset({
    "host", "port", "security", "username", "password", "password_env", "password_file",
    "timeout", "ca_file", "verify_certificate", "local_hostname",
})
SECURITY = ("starttls", "tls", "none")
DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}
_LINE_BREAKS = re.compile(r"[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]+")


@dataclass(frozen=True)
class SmtpSettings:
    host: str = "localhost"
    port: int = 587
    security: str = "starttls"
    username: str | None = None
    password: str | None = None
    timeout: float = 30.0
    ca_file: Path | None = None
    verify_certificate: bool = True
    local_hostname: str | None = None


def smtp_settings(opts: Options) -> SmtpSettings:
    """Read the SMTP keys of a channel's options (see :data:`SMTP_OPTIONS`)."""
    security = opts.choice("security", SECURITY, "starttls")
    username = opts.text("username")
    password = opts.secret("password")
    if username and password is None:
        raise ChannelConfigError("password_env", f"username {username!r} needs a password")
    ca_file = opts.path("ca_file")
    if ca_file is not None and not ca_file.is_file():
        raise ChannelConfigError("ca_file", f"{ca_file} is not a file")
    return SmtpSettings(
        host=opts.text("host", "localhost") or "localhost",
        port=opts.integer("port", DEFAULT_PORTS[security], minimum=1),
        security=security,
        username=username,
        password=password if username else None,
        timeout=opts.number("timeout", 30.0),
        ca_file=ca_file,
        verify_certificate=opts.flag("verify_certificate", True),
        local_hostname=opts.text("local_hostname"),
    )


def one_line(value: str) -> str:
    """Fold any line break into a space: for display names and subjects."""
    return " ".join(_LINE_BREAKS.sub(" ", value).split())


def parse_address(value: str, display_name: str = "") -> Address:
    """One ``local@domain`` address; raises ValueError with a readable reason.

    Only a bare address: a display name or angle brackets (``<a@b.fr>``), a
    source route (``@relay:a@b.fr``), a control character or a bidi mark in
    it is refused, never half-read.
    """
    value = value.strip()
    if _LINE_BREAKS.search(value):
        raise ValueError(f"{value!r} contains a line break")
    if not value.isprintable():
        raise ValueError(f"{value!r} contains a control character")
    try:
        address = Address(display_name=one_line(display_name), addr_spec=value)
    except (HeaderParseError, ValueError, IndexError, TypeError) as exc:
        # HeaderParseError is no ValueError: left alone it escaped the channel.
        raise ValueError(f"{value!r} is not an email address ({exc})") from exc
    if not address.username or not address.domain or "@" not in address.addr_spec:
        raise ValueError(f"{value!r} is not an email address")
    return address


def parse_address_list(value: str, display_name: str = "") -> list[Address]:
    """Addresses separated by commas or semicolons, as customer records hold them."""
    return [parse_address(part, display_name) for part in re.split(r"[,;]", value)
            if part.strip()]


def message_id_for(key: str, domain: str, *, reprint: bool = False) -> str:
    """A Message-ID derived from the delivery key, so a retry of the same
    reminder carries the same id and the receiving side can spot a duplicate.
    """
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        domain = "relances.invalid"
    if reprint:
        # A deliberate reprint is a new message (servers drop a repeated id);
        # its In-Reply-To and References name the original.
        digest = f"{digest}.r{time.time_ns():x}"
    return f"<{digest}.relances@{domain}>"


def build_message(
    delivery: Delivery,
    *,
    sender: Address,
    to: list[Address],
    reply_to: Address | None = None,
    attachments: tuple[Attachment, ...] | None = None,
) -> EmailMessage:
    """The message for ``delivery``: text and HTML bodies, the PDFs attached."""
    message = EmailMessage(policy=SMTP)
    message["From"] = sender
    message["To"] = to
    if reply_to is not None:
        message["Reply-To"] = reply_to
    message["Subject"] = one_line(delivery.subject)
    message["Date"] = format_datetime(localtime())
    message["Message-ID"] = message_id_for(delivery.key, sender.domain, reprint=delivery.reprint)
    if delivery.reprint:
        # The reminder's first message carried the id of the same key: a
        # reply to it, so mail clients show the copy in its thread.
        original = message_id_for(delivery.key, sender.domain)
        message["In-Reply-To"] = original
        message["References"] = original
    message.set_content(delivery.text_body or one_line(delivery.subject) + "\n")
    if delivery.html_body:
        message.add_alternative(delivery.html_body, subtype="html")
    if attachments is None:
        attachments = delivery.attachments or (Attachment(delivery.filename, delivery.pdf),)
    for attachment in attachments:
        maintype, _, subtype = attachment.mime_type.partition("/")
        message.add_attachment(
            attachment.content,
            maintype=maintype,
            subtype=subtype or "octet-stream",
            filename=one_line(attachment.filename),
        )
    return message


class SmtpClient:
    """One SMTP connection, opened on first use and reused while
    ``keep_open`` is true (a batch); reopened when the server dropped it.
    """

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self.keep_open = False
        self._smtp: aiosmtplib.SMTP | None = None

    def _tls_context(self) -> ssl.SSLContext:
        s = self.settings
        context = ssl.create_default_context(cafile=str(s.ca_file) if s.ca_file else None)
        if not s.verify_certificate:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    async def _connection(self) -> aiosmtplib.SMTP:
        if self._smtp is not None and self._smtp.is_connected:
            return self._smtp
        s = self.settings
        smtp = aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            username=s.username,
            password=s.password,
            timeout=s.timeout,
            local_hostname=s.local_hostname,
            use_tls=s.security == "tls",
            start_tls=s.security == "starttls",
            tls_context=self._tls_context() if s.security != "none" else None,
        )
        logger.debug("connecting to %s:%s (%s)", s.host, s.port, s.security)
        try:
            await smtp.connect()
        except (aiosmtplib.SMTPException, ssl.SSLError, OSError) as exc:
            await _release(smtp)
            raise _delivery_error(exc, f"SMTP {s.host}:{s.port}") from exc
        self._smtp = smtp
        return smtp

    async def send(
        self, message: EmailMessage, *, sender: str, recipients: list[str]
    ) -> dict[str, str]:
        """Send ``message``; return the recipients the server refused while
        accepting others.  Raises :class:`DeliveryError` otherwise.
        """
        try:
            smtp = await self._connection()
            try:
                refused, _ = await smtp.send_message(
                    message, sender=sender, recipients=recipients
                )
            except (aiosmtplib.SMTPException, ssl.SSLError, OSError) as exc:
                raise _delivery_error(exc, "SMTP") from exc
        finally:
            if not self.keep_open or (self._smtp is not None and not self._smtp.is_connected):
                await self.disconnect()
        return {addr: f"{r.code} {r.message}" for addr, r in refused.items()}

    async def disconnect(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None or not smtp.is_connected:
            return
        protocol = smtp.protocol
        try:
            await smtp.quit()
        except (aiosmtplib.SMTPException, OSError):
            smtp.close()
        await _closed(protocol)


async def _release(smtp: aiosmtplib.SMTP) -> None:
    """Close the connection and let the loop run its close callback now.

    See :func:`_closed`.
    """
    protocol = smtp.protocol
    smtp.close()
    await _closed(protocol)


async def _closed(protocol: Any, timeout: float = 2.0) -> None:
    """Wait (briefly) until the connection is really gone.

    Closing a TLS connection sends close_notify and waits for the peer; the
    socket is released only then, in a callback on the loop.  Waiting here
    means a batch's end really frees the socket, rather than leaving it to
    the garbage collector when a short-lived loop ends first.
    """
    if protocol is None:
        # aiosmtplib already dropped its connection (a failed handshake closes
        # it inside connect()): give the loop a moment to finish closing it.
        await asyncio.sleep(0.05)
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while protocol.transport is not None and loop.time() < deadline:
        await asyncio.sleep(0.005)


def _delivery_error(exc: BaseException, where: str) -> DeliveryError:
    """4xx and lost connections are worth retrying; 5xx are not."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        detail = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
        return DeliveryError(
            f"{where}: every recipient refused: {detail}",
            retryable=all(400 <= c < 500 for c in codes),
        )
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return DeliveryError(
            f"{where}: server replied {exc.code} {exc.message}",
            retryable=400 <= exc.code < 500,
        )
    cause = exc.__cause__ or exc.__context__
    if isinstance(exc, ssl.SSLError) or isinstance(cause, ssl.SSLError):
        # A certificate or TLS mismatch is a configuration problem.
        return DeliveryError(f"{where}: TLS failed: {exc}", retryable=False)
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        return DeliveryError(f"{where}: {exc}", retryable=False)
    return DeliveryError(f"{where}: {exc}", retryable=True)
