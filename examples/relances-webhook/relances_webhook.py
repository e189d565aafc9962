"""relances-webhook: a delivery channel that POSTs each reminder as JSON.

An example of a third-party Relances plugin: it imports only
``relances.plugins`` and is found through its ``relances`` entry point.
HTTP is spoken with asyncio streams from the standard library, so the
plugin needs nothing else and never blocks the event loop.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import ssl
from typing import Any
from urllib.parse import urlsplit

from relances.plugins import (
    Channel,
    ChannelConfigError,
    ChannelSettings,
    Delivery,
    DeliveryError,
    Receipt,
    RegisterChannel,
    hookimpl,
)

__version__ = "0.1.0"
logger = logging.getLogger(__name__)
KNOWN = {"url", "token_env", "include_pdf", "timeout"}


class WebhookChannel(Channel):
    name = "webhook"
    label = "Webhook"

    def __init__(self, settings: ChannelSettings) -> None:
        options = dict(settings.options)
        for key in options:
            if key not in KNOWN:
                raise ChannelConfigError(key, f"unknown option; known: {', '.join(sorted(KNOWN))}")
        url = options.get("url")
        parts = urlsplit(str(url or ""))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ChannelConfigError("url", f"expected an http(s) URL, got {url!r}")
        self.url = parts
        self.token: str | None = None
        if options.get("token_env"):
            self.token = os.environ.get(options["token_env"])
            if self.token is None:
                raise ChannelConfigError("token_env", f"{options['token_env']} is not set")
        self.include_pdf = bool(options.get("include_pdf", True))
        self.timeout = float(options.get("timeout", 10))

    def payload(self, delivery: Delivery) -> dict[str, Any]:
        r = delivery.recipient
        body: dict[str, Any] = {
            "key": delivery.key, "kind": delivery.kind, "level": delivery.level,
            "subject": delivery.subject, "invoice_numbers": list(delivery.invoice_numbers),
            "filename": delivery.filename, "sha256": delivery.sha256,
            "reprint": delivery.reprint,
            "customer": {"code": r.code, "name": r.name, "email": r.email,
                         "phone": r.phone, "fax": r.fax},
        }
        if self.include_pdf:
            body["pdf"] = base64.b64encode(delivery.pdf).decode("ascii")
        return body

    async def send(self, delivery: Delivery) -> Receipt:
        body = json.dumps(self.payload(delivery)).encode("utf-8")
        try:
            status, headers, answer = await asyncio.wait_for(self._post(body, delivery.key),
                                                             self.timeout)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
            raise DeliveryError(f"webhook {self.url.geturl()}: {exc!r}", retryable=True) from exc
        if 200 <= status < 300:
            return Receipt(channel=self.name, reference=_reference(headers, answer, delivery))
        retryable = status in (408, 429) or status >= 500
        text = answer.decode("utf-8", "replace")[:200]
        raise DeliveryError(f"webhook answered {status}: {text}", retryable=retryable)

    async def _post(self, body: bytes, key: str) -> tuple[int, dict[str, str], bytes]:
        u = self.url
        secure = u.scheme == "https"
        port = u.port or (443 if secure else 80)
        reader, writer = await asyncio.open_connection(
            u.hostname, port, ssl=ssl.create_default_context() if secure else None)
        try:
            path = (u.path or "/") + (f"?{u.query}" if u.query else "")
            lines = [f"POST {path} HTTP/1.1", f"Host: {u.netloc}",
                     "Content-Type: application/json", f"Content-Length: {len(body)}",
                     f"Idempotency-Key: {key}", "Connection: close",
                     f"User-Agent: relances-webhook/{__version__}"]
            if self.token:
                lines.append(f"Authorization: Bearer {self.token}")
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
            await writer.drain()
            status_line = (await reader.readline()).decode("latin-1")
            status = int(status_line.split()[1])
            headers: dict[str, str] = {}
            while (line := (await reader.readline()).decode("latin-1").strip()):
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if "content-length" in headers:
                answer = await reader.readexactly(int(headers["content-length"]))
            else:
                answer = await reader.read()
            return status, headers, answer
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


def _reference(headers: dict[str, str], answer: bytes, delivery: Delivery) -> str:
    try:
        data = json.loads(answer)
        if isinstance(data, dict) and data.get("id") is not None:
            return str(data["id"])
    except ValueError:
        pass
    return headers.get("location") or delivery.sha256


@hookimpl
def relances_register_channels(register: RegisterChannel) -> None:
    register("webhook", WebhookChannel)
