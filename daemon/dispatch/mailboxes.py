"""The mailboxes bounces and replies come back to, and reading them.

``settings.mailboxes`` maps a name to one mailbox: an IMAP folder
(``type: imap``, read with aioimaplib) or a Maildir on this machine
(``type: maildir``).  Bounces come back to the envelope sender of the
emails (the email channel's ``from_address``), replies to their Reply-To:
list the mailboxes that receive either.  Each message is handed to
:func:`relances.daemon.dispatch.mailroom.read_mailboxes` with a ``source``
that names it for good in its mailbox (IMAP: ``UIDVALIDITY/UID``;
Maildir: the file's key), so that it is classified once however often the
mailbox is read.  Nothing is deleted or moved: the mailbox stays the
people's to read.

Options of an IMAP mailbox: ``host``, ``port`` (993 with ``security:
tls``, 143 with ``none``), ``security`` (``tls`` or ``none``),
``username``, ``password_env`` or ``password_file``, ``folder``
(``INBOX``), ``timeout`` (seconds, 30), ``ca_file``,
``verify_certificate``.  Of a Maildir: ``path``.
"""

from __future__ import annotations

import contextlib
import mailbox
import os
import re
import ssl
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relances.daemon.config import Settings
from relances.daemon.errors import ConfigError, RelancesError

IMAP_KEYS = frozenset({"type", "host", "port", "security", "username", "password_env",
                       "password_file", "folder", "timeout", "ca_file", "verify_certificate"})
MAILDIR_KEYS = frozenset({"type", "path"})
MAX_MESSAGE_BYTES = 10 * 1024 * 1024  # a bounce quotes a letter: a few hundred KiB
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


class MailboxError(RelancesError):
    """A mailbox could not be read (unreachable server, refused login, missing folder)."""


@dataclass(frozen=True)
class Mailbox:
    name: str
    type: str  # imap | maildir
    host: str = ""
    port: int = 0
    security: str = "tls"
    username: str = ""
    password: str = ""
    folder: str = "INBOX"
    timeout: float = 30.0
    ca_file: Path | None = None
    verify_certificate: bool = True
    path: Path | None = None

    def __str__(self) -> str:
        if self.type == "maildir":
            return f"{self.name} (Maildir {self.path})"
        return f"{self.name} ({self.username}@{self.host}:{self.port}/{self.folder})"


def configured_mailboxes(settings: Settings) -> list[Mailbox]:
    """Every mailbox of ``settings.mailboxes``, checked; a ConfigError names the key."""
    return [_mailbox(settings, name, options or {})
            for name, options in settings.mailboxes.items()]


def _mailbox(settings: Settings, name: str, options: Mapping[str, Any]) -> Mailbox:
    def fail(key: str | None, message: str) -> ConfigError:
        where = settings.where("mailboxes", name, *([key] if key else []))
        return ConfigError(f"{where}: {message}")

    if not _NAME.match(name):
        raise fail(None, "a mailbox name is a letter then letters, digits, - or _")
    if not isinstance(options, Mapping):
        raise fail(None, "must be a mapping of options")
    kind = options.get("type")
    if kind not in ("imap", "maildir"):
        raise fail("type", f"must be imap or maildir, got {kind!r}")
    known = IMAP_KEYS if kind == "imap" else MAILDIR_KEYS
    for key in options:
        if key not in known:
            raise fail(str(key), f"unknown option; known: {', '.join(sorted(known))}")

    def text(key: str, default: str = "") -> str:
        value = options.get(key, default)
        if not isinstance(value, str) or not value.isprintable():
            raise fail(key, f"expected one line of text, got {value!r}")
        return value

    if kind == "maildir":
        raw = text("path")
        if not raw:
            raise fail("path", "is required")
        path = Path(raw).expanduser()
        return Mailbox(name, "maildir", path=path if path.is_absolute() else settings.config_dir / path)
    host, username = text("host"), text("username")
    for key, value in (("host", host), ("username", username)):
        if not value:
            raise fail(key, "is required")
    security = text("security", "tls")
    if security not in ("tls", "none"):
        raise fail("security", f"must be tls or none, got {security!r}")
    port = options.get("port", 993 if security == "tls" else 143)
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise fail("port", f"must be a port number, got {port!r}")
    timeout = options.get("timeout", 30)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 600:
        raise fail("timeout", f"must be seconds, above 0 and at most 600, got {timeout!r}")
    verify = options.get("verify_certificate", True)
    if not isinstance(verify, bool):
        raise fail("verify_certificate", f"expected true or false, got {verify!r}")
    ca_file = text("ca_file")
    return Mailbox(name, "imap", host=host, port=port, security=security, username=username,
                   password=_password(options, fail, settings.config_dir), folder=text("folder", "INBOX"),
                   timeout=float(timeout), ca_file=settings.config_dir / ca_file if ca_file else None,
                   verify_certificate=verify)


def _password(options: Mapping[str, Any], fail: Any, config_dir: Path) -> str:
    """From the environment variable ``password_env`` names, or the file ``password_file``
    names: never from the settings file itself."""
    if "password_env" in options:
        name = options["password_env"]
        if not isinstance(name, str) or name not in os.environ:
            raise fail("password_env", f"the environment has no variable {name!r}")
        return os.environ[name]
    if "password_file" in options:
        path = config_dir / str(options["password_file"])
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise fail("password_file", f"cannot read {path}: {exc.strerror}") from None
    raise fail("password_env", "an IMAP mailbox needs password_env or password_file")


@dataclass(frozen=True)
class Fetched:
    """One message of a mailbox: ``source`` names it there for good."""

    source: str
    content: bytes
    uidvalidity: int | None = None
    uid: int | None = None


async def fetch(box: Mailbox, *, after_uid: dict[int, int]) -> AsyncIterator[Fetched]:
    """The mailbox's messages, oldest first; for IMAP only those with a UID above
    ``after_uid[uidvalidity]`` (what an earlier reading recorded)."""
    if box.type == "maildir":
        for item in _maildir(box):
            yield item
        return
    async for item in _imap(box, after_uid):
        yield item


def _maildir(box: Mailbox) -> list[Fetched]:
    assert box.path is not None
    if not (box.path / "cur").is_dir() or not (box.path / "new").is_dir():
        raise MailboxError(f"mailbox {box}: not a Maildir (no cur/ and new/)")
    folder = mailbox.Maildir(box.path, create=False)
    found = []
    for key in sorted(folder.iterkeys()):
        try:
            with folder.get_file(key) as handle:
                content = handle.read(MAX_MESSAGE_BYTES + 1)
        except (KeyError, OSError):  # gone meanwhile: another reader moved it
            continue
        found.append(Fetched(f"maildir/{key}", content[:MAX_MESSAGE_BYTES]))
    return found


async def _imap(box: Mailbox, after_uid: dict[int, int]) -> AsyncIterator[Fetched]:
    import aioimaplib  # only a daemon with an IMAP mailbox pays for it

    context = None
    if box.security == "tls":
        context = ssl.create_default_context(cafile=str(box.ca_file) if box.ca_file else None)
        if not box.verify_certificate:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    client = (aioimaplib.IMAP4_SSL(box.host, box.port, timeout=box.timeout, ssl_context=context)
              if context else aioimaplib.IMAP4(box.host, box.port, timeout=box.timeout))
    try:
        try:
            await client.wait_hello_from_server()
        except (OSError, TimeoutError, aioimaplib.AioImapException) as exc:
            raise MailboxError(f"mailbox {box}: cannot connect: {exc or type(exc).__name__}") from None
        async for fetched in _session(client, box, after_uid):
            yield fetched
    except (OSError, TimeoutError, aioimaplib.AioImapException) as exc:
        raise MailboxError(f"mailbox {box}: the server stopped answering: "
                           f"{exc or type(exc).__name__}") from None
    finally:
        with contextlib.suppress(Exception):  # the server may be gone already
            await client.logout()


async def _session(client: Any, box: Mailbox, after_uid: Mapping[int, int]) -> AsyncIterator[Fetched]:
    """Log in, open the folder and fetch what came after ``after_uid``."""
    answer = await client.login(box.username, box.password)
    if answer.result != "OK":
        raise MailboxError(f"mailbox {box}: login refused: {_said(answer.lines)}")
    answer = await client.select(f'"{box.folder}"')
    if answer.result != "OK":
        raise MailboxError(f"mailbox {box}: cannot open the folder: {_said(answer.lines)}")
    validity = next((int(m.group(1)) for line in answer.lines
                     if (m := re.search(rb"UIDVALIDITY (\d+)", _bytes(line)))), 0)
    after = after_uid.get(validity, 0)
    answer = await client.uid_search(f"UID {after + 1}:*")
    if answer.result != "OK":
        raise MailboxError(f"mailbox {box}: search refused: {_said(answer.lines)}")
    uids = sorted({int(uid) for line in answer.lines
                   if _bytes(line).startswith(b"SEARCH") or _bytes(line)[:1].isdigit()
                   for uid in re.findall(rb"\d+", _bytes(line).removeprefix(b"SEARCH"))
                   if int(uid) > after})
    for uid in uids:
        answer = await client.uid("fetch", str(uid), "(BODY.PEEK[])")
        content = next((bytes(line) for line in answer.lines if isinstance(line, bytearray)), None)
        if answer.result != "OK" or content is None:
            raise MailboxError(f"mailbox {box}: cannot fetch message {uid}: {_said(answer.lines)}")
        yield Fetched(f"{validity}/{uid}", content[:MAX_MESSAGE_BYTES], validity, uid)


def _bytes(line: Any) -> bytes:
    return bytes(line) if isinstance(line, bytes | bytearray) else str(line).encode()


def _said(lines: list[Any]) -> str:
    return " ".join(_bytes(line).decode("utf-8", "replace") for line in lines)[:300] or "no answer"
