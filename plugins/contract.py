"""The channel contract: what a delivery channel receives, returns and raises.

A channel is an object with a ``name``, a ``label`` (the word used in the
history, as in "Relance niveau 2 (Courrier)") and ``async send(delivery)``
returning a :class:`Receipt`.  It reports failure by raising
:class:`DeliveryError`; the dispatcher alone decides whether to retry, fall
back to the next channel of the level, or give up.

A channel whose other side confirms later (a print job queued in CUPS, a
fax job in HylaFAX) returns a receipt with ``confirmed=False`` and answers
:meth:`Channel.confirm` when asked how the job went; one that can tell
whether a delivery already reached it (a job carrying the reminder's key)
answers :meth:`Channel.find`, which the dispatcher asks before sending a
reminder again whose earlier attempt ended without an outcome.  A channel
that keeps a copy of what it sent (a file) erases it in
:meth:`Channel.forget` when the customer's data is erased.

This module imports nothing of the rest of the project, so a plugin author
needs only ``relances.plugins``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Any, Literal


class RelancesError(Exception):
    """Base of every error Relances raises on purpose.

    The command line turns these into one line on stderr and a non-zero exit.
    """


class DeliveryError(RelancesError):
    """A channel could not deliver.

    ``retryable=True`` means "try again later" (a 4xx SMTP reply, a dropped
    connection, a stopped printer); ``retryable=False`` means "this channel
    will never take this delivery" (a 5xx reply, no fax number) and the
    dispatcher falls back to the level's next channel.
    """

    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


@dataclass(frozen=True)
class Recipient:
    """The customer a reminder is addressed to, as plain data."""

    code: str
    name: str
    email: str | None = None
    fax: str | None = None
    phone: str | None = None
    address: tuple[str, ...] = ()
    language: str = "fr"
    is_consumer: bool = False
    # business | public | consumer | unknown (added in 0.2; is_consumer is kind == "consumer")
    kind: str = "unknown"
    # The locality line's parts, as in ``address`` (added in 0.3): what a paper channel needs.
    postal_code: str | None = None
    city: str | None = None

    def has_postal_address(self) -> bool:
        """A street (or PO box) line above a city: what the window of an envelope needs
        (added in 0.3).  A paper channel that cannot reach a customer without one says
        so in ``can_reach``, and the dispatcher goes to the level's next channel."""
        if not (self.city or "").strip():
            return False
        locality = " ".join(part for part in (self.postal_code, self.city) if part)
        return locality in self.address and self.address.index(locality) > 0


@dataclass(frozen=True)
class Attachment:
    """One file that travels with a delivery."""

    filename: str
    content: bytes
    mime_type: str = "application/pdf"


@dataclass(frozen=True)
class Delivery:
    """One document on its way to one customer through one channel.

    ``key`` is stable for a given reminder (invoice or statement, level,
    channel): a resend of the same reminder carries the same key, so a
    channel can derive a Message-ID or a job tag from it and the receiving
    side can recognise a duplicate.

    ``pdf`` is the whole document as it leaves on paper: the letter followed
    by the invoice copies it asks for.  ``attachments`` holds the same
    content split into files (the letter first, then each copy), which is
    what email sends.
    """

    key: str
    kind: Literal["letter", "statement"]
    level: int
    recipient: Recipient
    subject: str
    pdf: bytes
    filename: str
    attachments: tuple[Attachment, ...] = ()
    text_body: str = ""
    html_body: str = ""
    invoice_numbers: tuple[str, ...] = ()
    reprint: bool = False

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.pdf).hexdigest()


@dataclass(frozen=True)
class Receipt:
    """What a channel hands back once it has accepted a delivery.

    ``reference`` is the channel's own proof: a Message-ID, a CUPS job id, a
    fax job id, a file path.

    ``confirmed=False`` (added in 0.4): the other side holds the document
    but has not yet said it went (a print job waiting in the queue, a fax
    still dialling).  The reminder then waits, without a lease, and the
    dispatcher asks :meth:`Channel.confirm` until it answers; the invoice is
    stamped only then.
    """

    channel: str
    reference: str
    detail: str = ""
    confirmed: bool = True


@dataclass(frozen=True)
class ChannelSettings:
    """What a channel factory receives: its own section of ``settings.yaml``.

    ``options`` is the mapping under ``channels.<name>``, unvalidated: the
    channel checks it and raises :class:`ChannelConfigError` naming the key.
    Relative paths are resolved against ``config_dir`` (see :meth:`path`).
    """

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)
    config_dir: Path = Path(".")
    data_dir: Path = Path("data")

    def path(self, value: str | Path) -> Path:
        """Resolve a path from the options against the configuration folder."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else (self.config_dir / p)


class ChannelConfigError(RelancesError):
    """A channel's options in ``settings.yaml`` are wrong.

    ``key`` is the option's name inside the channel's section; the host
    adds the file and the line.
    """

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


class Channel:
    """Base class for delivery channels.

    Subclasses set ``name`` and ``label`` and implement :meth:`send`.  The
    dispatcher opens a channel once for a batch (``async with channel:``),
    so a channel that holds a connection (SMTP) reuses it for every
    delivery of the batch.
    """

    name: str = ""
    label: str = ""

    def can_reach(self, recipient: Recipient) -> bool:
        """Whether this channel has what it needs to reach ``recipient``.

        The dispatcher skips a channel that cannot reach a customer (no
        email address, no fax number) and goes to the level's next one.
        """
        return True

    async def open(self) -> None:
        """Prepare for a batch of deliveries (connect, log in)."""

    async def close(self) -> None:
        """End a batch; called even when a delivery failed."""

    async def send(self, delivery: Delivery) -> Receipt:
        raise NotImplementedError

    async def confirm(self, receipt: Receipt) -> Receipt | None:
        """How a delivery handed over with ``confirmed=False`` went (added in 0.4).

        Return the receipt with ``confirmed=True`` (and whatever ``detail``
        the other side now gives, such as the pages sent) once the document
        has gone; ``None`` while it is still under way; raise
        :class:`DeliveryError` when it failed (``retryable`` as for
        :meth:`send`).  Called again and again, from a fresh channel after a
        restart: read the state from the other side, never from memory.  The
        default, for channels that confirm at once, confirms.
        """
        return replace(receipt, confirmed=True)

    async def find(self, delivery: Delivery) -> Receipt | None:
        """Whether ``delivery`` already reached this channel (added in 0.4).

        Asked before a reminder is sent again after an attempt that ended
        without an outcome (a crash, a timeout after the other side took
        it): return the receipt of the job that carries ``delivery.key``
        (``confirmed`` as :meth:`send` would have set it) if it exists and
        has not failed, else ``None``, and the dispatcher sends.  Never
        asked for a reprint.  The default cannot tell and returns ``None``.
        """
        return None

    async def forget(self, receipt: Receipt) -> str | None:
        """Erase what this channel keeps of a delivery (added in 0.5).

        Asked by ``relances customer CODE --forget`` for each receipt of a
        customer whose data is being erased, once nothing is owed and the
        retention of the proofs has passed.  Delete the copy the channel
        keeps (the archive's file) and return ``None``; return one sentence
        saying what stays that Relances cannot erase (a fax server's job
        history), for the person to deal with.  The default keeps nothing
        and returns ``None``.
        """
        return None

    async def __aenter__(self) -> Channel:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


ChannelFactory = Callable[[ChannelSettings], Channel]
"""Builds a channel from its settings; handed to ``register`` by plugins."""
