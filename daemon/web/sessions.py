"""The browser's session: a signed cookie, its idle timeout, its CSRF token.

The cookie holds the user's name, a fingerprint of their password hash (a
new password, or a disabled account, ends every session at once), the
CSRF token of the session's forms and the messages waiting for the next
page.  It is signed with the session secret (itsdangerous) and re-signed
on every response, so its timestamp says when the session was last used:
past ``web.idle_minutes`` the signature is refused and the person logs in
again.  Nothing is kept on the server, so instances that share the secret
share the sessions.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from relances.daemon.config import Settings
from relances.daemon.errors import ConfigError

log = logging.getLogger(__name__)

COOKIE = "relances_session"
SECRET_ENV = "RELANCES_WEB_SECRET"
SECRET_FILE = "web-secret"


def session_secret(settings: Settings) -> str:
    """``$RELANCES_WEB_SECRET``, else ``web.session_secret_file``, else a key
    generated once into the data folder (readable by its owner only)."""
    env = os.environ.get(SECRET_ENV, "").strip()
    if env:
        return env
    configured = settings.web.session_secret_file
    if configured is not None:
        path = settings.path(configured)
        try:
            secret = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{settings.where('web', 'session_secret_file')}: "
                              f"cannot read {path}: {exc.strerror}") from None
        if len(secret) < 32:
            raise ConfigError(f"{settings.where('web', 'session_secret_file')}: {path} "
                              "holds fewer than 32 characters")
        return secret
    return _generated_secret(settings.data_path / SECRET_FILE)


def _generated_secret(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another instance made it first
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(secret + "\n")
    log.info("web: session secret generated into %s", path)
    return secret


def fingerprint(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode("utf-8")).hexdigest()[:16]


@dataclass
class Session:
    """What a request's cookie says; changed by the handler, written back after it."""

    user: str | None = None
    key: str = ""  # the fingerprint of the user's password hash
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    messages: list[tuple[str, str]] = field(default_factory=list)
    expired: bool = False  # a logged-in session ran past its idle timeout

    def flash(self, text: str, kind: str = "ok") -> None:
        self.messages.append((kind, text))

    def take_messages(self) -> list[tuple[str, str]]:
        taken, self.messages = self.messages, []
        return taken

    def csrf_ok(self, token: str | None) -> bool:
        return token is not None and token != "" and \
            hmac.compare_digest(token.encode(), self.csrf.encode())

    def log_in(self, user: str, password_hash: str) -> None:
        # A fresh CSRF token at login: a token seen before it is worth nothing after.
        self.user, self.key, self.csrf = user, fingerprint(password_hash), secrets.token_urlsafe(32)
        self.expired = False

    def log_out(self) -> None:
        self.user, self.key, self.csrf = None, "", secrets.token_urlsafe(32)


class SessionCodec:
    """Signs and reads the session cookie."""

    def __init__(self, secret: str, *, idle_seconds: int) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="relances.web.session")
        self.idle_seconds = idle_seconds

    def read(self, cookie: str | None) -> Session:
        if not cookie:
            return Session()
        try:
            data = self._serializer.loads(cookie, max_age=self.idle_seconds)
        except SignatureExpired as exc:
            try:
                old = self._serializer.load_payload(exc.payload) if exc.payload else None
            except BadSignature:
                old = None
            return Session(expired=isinstance(old, dict) and bool(old.get("u")))
        except BadSignature:
            return Session()
        if not isinstance(data, dict) or not isinstance(data.get("c"), str):
            return Session()
        messages = [(str(k), str(t)) for k, t in data.get("m", [])][:10]
        return Session(user=data.get("u"), key=str(data.get("k", "")), csrf=data["c"],
                       messages=messages)

    def write(self, session: Session) -> str:
        return self._serializer.dumps({"u": session.user, "k": session.key, "c": session.csrf,
                                       "m": session.messages})
