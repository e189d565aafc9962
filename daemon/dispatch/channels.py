"""The channels a dispatch run sends through, and what it hands them.

:func:`configured_channel` builds a channel from its ``channels.<name>``
settings through the plugin manager, turning a channel's complaint about
its options into a :class:`ConfigError` that names the key and the line;
the service's start-up checks call it too.  :class:`Channels` opens each
channel once per run and sends one delivery at a time through it.
:func:`unreachable` lists the customers no channel of a level can reach,
for ``check-config``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import select

from relances.daemon.config import Settings
from relances.daemon.errors import ConfigError
from relances.daemon.ledger.due import open_invoices
from relances.daemon.letters.documents import LetterJob
from relances.daemon.letters.pool import RenderedLetter
from relances.daemon.models import Customer, Invoice, Reminder
from relances.daemon.storage import App
from relances.plugins.contract import (
    Channel,
    ChannelConfigError,
    ChannelSettings,
    Delivery,
    Receipt,
    Recipient,
)
from relances.plugins.manager import build_channel

log = logging.getLogger(__name__)


def worker_name() -> str:
    """This process's name in the outbox's leases: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def configured_channel(settings: Settings, pm: Any, name: str) -> Channel:
    """The channel ``name`` as ``channels.<name>`` configures it."""
    if name not in settings.channels:
        raise ConfigError(f"{settings.where('channels')}: channel {name!r} is not configured")
    try:
        return build_channel(pm, name, ChannelSettings(
            name=name, options=settings.channels[name] or {},
            config_dir=settings.config_dir, data_dir=settings.data_path))
    except ChannelConfigError as exc:
        raise ConfigError(f"{settings.where('channels', name, exc.key)}: {exc.message}") from None


def recipient_of(customer: Customer) -> Recipient:
    """The customer as a channel sees it; an address that bounced for good is no address,
    until it changes."""
    bounced = customer.email_bounce is not None and customer.email_bounce == customer.email
    return Recipient(
        code=customer.code, name=customer.name, email=None if bounced else customer.email,
        fax=customer.fax,
        phone=customer.phone, address=customer.address, language=customer.language,
        is_consumer=customer.is_consumer, kind=customer.kind,
        postal_code=customer.postal_code, city=customer.city,
    )


def delivery_for(reminder: Reminder, customer: Customer, rendered: RenderedLetter,
                 job: LetterJob) -> Delivery:
    """The delivery of a claimed reminder, under the reminder's own key.

    A reminder that left before and is sent again (``send --force``) goes
    as a reprint: a new message for the channel (a new Message-ID, in
    reply to the first one), never a copy a mail server would drop as a
    duplicate.
    """
    return Delivery(
        key=reminder.key, kind="statement" if reminder.kind == "statement" else "letter",
        level=reminder.level, recipient=recipient_of(customer), subject=rendered.subject,
        pdf=rendered.pdf, filename=rendered.filename, attachments=rendered.attachments,
        text_body=rendered.text_body, html_body=rendered.html_body,
        invoice_numbers=job.invoice_numbers, reprint=reminder.sent_at is not None,
    )


class Channels:
    """The channels of one dispatch run, built once and opened on first use.

    A channel sends one delivery at a time (an SMTP connection carries one
    message at a time); different channels send in parallel.
    """

    def __init__(self, app: App, pm: Any) -> None:
        self.app = app
        self.pm = pm
        self._open: dict[str, Channel] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def build(self, name: str) -> Channel:
        return configured_channel(self.app.settings, self.pm, name)

    async def get(self, name: str) -> Channel:
        channel = self._open.get(name)
        if channel is None:
            channel = self.build(name)
            await channel.open()
            self._open[name] = channel
            self._locks[name] = asyncio.Lock()
        return channel

    async def send(self, name: str, delivery: Delivery,
                   accepted: Callable[[Receipt], Awaitable[None]] | None = None,
                   still_due: Callable[[], Awaitable[bool]] | None = None, *,
                   ask_first: bool = False) -> Receipt | None:
        """Send through channel ``name``; ``accepted(receipt)`` records the
        acceptance before the channel takes its next delivery, so a kill
        leaves at most one accepted, unrecorded delivery per channel to be
        sent again.  ``still_due()`` is asked once the channel is free, just
        before it takes the delivery: False sends nothing and returns None.
        ``ask_first``: an earlier attempt ended without an outcome, so the
        channel is asked whether it already holds the delivery
        (:meth:`~relances.plugins.Channel.find`) before it is sent again.
        """
        channel = await self.get(name)
        async with self._locks[name]:
            if still_due is not None and not await still_due():
                return None
            found = await channel.find(delivery) if ask_first else None
            if found is not None:
                log.warning("%s: %s already holds it (%s); not sent again", delivery.key, name,
                            found.reference)
            receipt = found or await channel.send(delivery)
            if accepted is not None:
                await accepted(receipt)
            return receipt

    async def close(self) -> None:
        channels, self._open = self._open, {}
        for name, channel in channels.items():
            try:
                await channel.close()
            except Exception:  # noqa: BLE001 - closing must not hide what was sent
                log.exception("closing channel %s failed", name)


async def unreachable(session: Any, settings: Settings, pm: Any) -> list[tuple[str, int, str]]:
    """The customers with something open whom no channel of a level can reach (no email
    address for ``email``, no postal address for ``print``, no fax number for ``fax``):
    (code, level, the level's channels).  A channel whose settings are wrong is left to
    the start-up checks, which name its key."""
    built: dict[str, Channel | None] = {}

    def channel(name: str) -> Channel | None:
        if name not in built:
            try:
                built[name] = configured_channel(settings, pm, name)
            except ConfigError:
                built[name] = None
        return built[name]

    owing = select(Invoice.customer_id).where(open_invoices())
    customers = await session.execute(
        select(Customer).where(Customer.id.in_(owing), Customer.opted_out.is_(False))
        .order_by(Customer.code))
    found = []
    for customer in customers.scalars():
        recipient = recipient_of(customer)
        policy = settings.policy(customer.policy)
        for level in (1, 2, 3):
            names = policy.level(level).channels
            usable = [c for c in map(channel, names) if c is not None]
            if usable and not any(c.can_reach(recipient) for c in usable):
                found.append((customer.code, level, ", ".join(names)))
    return found
