"""The ``email`` channel: the letter as a PDF attachment, through SMTP.

Options (``settings.channels.email``): ``host``, ``port``, ``security``
(``starttls``, ``tls`` or ``none``), ``username`` with ``password_env`` or
``password_file``, ``from_address``, ``from_name``, ``reply_to``, ``bcc``,
``timeout``, ``ca_file``, ``verify_certificate``, ``local_hostname``.  See
``docs/plugins.md`` for the contract; the SMTP part lives in
:mod:`relances.channels.smtp` so the fax gateway sends the same way.

Each message the server accepted is written down at once
(:mod:`relances.channels._journal`), so that after a crash before the
dispatcher recorded it :meth:`EmailChannel.find` knows it left.
"""

from __future__ import annotations

import logging
import re
from email.headerregistry import Address

from relances.channels._journal import AcceptedJournal
from relances.channels._options import Options
from relances.channels.smtp import (
    SMTP_OPTIONS,
    SmtpClient,
    build_message,
    message_id_for,
    parse_address_list,
    smtp_settings,
)
from relances.plugins import (
    Channel,
    ChannelConfigError,
    ChannelSettings,
    Delivery,
    DeliveryError,
    Receipt,
    Recipient,
    RegisterChannel,
    hookimpl,
)

logger = logging.getLogger(__name__)

OPTIONS = SMTP_OPTIONS | {"from_address", "from_name", "reply_to", "bcc"}
_ADDRESS_SEPARATORS = re.compile(r"[,;]")


class EmailChannel(Channel):
    """Sends each delivery as one message; one SMTP connection per batch."""

    name = "email"
    label = "Email"

    def __init__(self, settings: ChannelSettings) -> None:
        opts = Options(settings, OPTIONS)
        self.smtp = SmtpClient(smtp_settings(opts))
        self.sender = _configured(opts, "from_address", opts.text("from_name") or "")[0]
        reply_to = _configured(opts, "reply_to")
        self.reply_to = reply_to[0] if reply_to else None
        self.bcc = _configured(opts, "bcc")
        self.journal = AcceptedJournal(settings.data_dir / f"{settings.name}-accepted.tsv")

    def can_reach(self, recipient: Recipient) -> bool:
        # A customer with an address is reached or refused by send(): a broken
        # address is a permanent failure that names it, in the history, and the
        # level's next channel is tried; it is not skipped without a word.
        return bool(_ADDRESS_SEPARATORS.sub("", recipient.email or "").strip())

    @staticmethod
    def _recipients(recipient: Recipient) -> list[Address]:
        # A customer record may hold several addresses ("a@x.fr; b@x.fr").
        return parse_address_list(recipient.email or "", recipient.name)

    async def open(self) -> None:
        self.smtp.keep_open = True

    async def close(self) -> None:
        self.smtp.keep_open = False
        await self.smtp.disconnect()

    async def send(self, delivery: Delivery) -> Receipt:
        try:
            to = self._recipients(delivery.recipient)
        except ValueError as exc:
            raise DeliveryError(
                f"customer {delivery.recipient.code}: invalid email address: {exc.args[0]}",
                retryable=False,
            ) from exc
        if not to:
            raise DeliveryError(
                f"customer {delivery.recipient.code} has no email address", retryable=False
            )
        message = build_message(
            delivery, sender=self.sender, to=to, reply_to=self.reply_to
        )
        message_id = str(message["Message-ID"])
        refused = await self.smtp.send(
            message,
            sender=self.sender.addr_spec,
            recipients=[a.addr_spec for a in to + self.bcc],
        )
        customer = [a.addr_spec for a in to]
        if all(address in refused for address in customer):
            # Only the Bcc copy was taken: the customer received nothing.
            replies = "; ".join(f"{a}: {refused[a]}" for a in customer)
            transient = all(refused[a].startswith("4") for a in customer)
            raise DeliveryError(f"refused for the customer ({replies}); only the copy to "
                                f"{', '.join(a.addr_spec for a in self.bcc)} was accepted",
                                retryable=transient)
        self.journal.record(message_id, delivery.key)
        detail = f"to {', '.join(customer)}"
        if refused:
            # Some of the customer's addresses took it: the reminder reached them.
            logger.warning("%s: refused by the server: %s", delivery.key, ", ".join(refused))
            detail += f"; refused: {', '.join(refused)}"
        return Receipt(channel=self.name, reference=message_id, detail=detail)

    async def find(self, delivery: Delivery) -> Receipt | None:
        """The reminder's message, if this channel's journal says a server accepted it."""
        message_id = message_id_for(delivery.key, self.sender.domain)
        if delivery.reprint or not self.journal.holds(message_id):
            return None
        return Receipt(channel=self.name, reference=message_id, detail="accepted before")

    async def forget(self, receipt: Receipt) -> str | None:
        """The copies sent to ``bcc`` stay in those mailboxes: say so."""
        if not self.bcc:
            return None
        return (f"email {receipt.reference}: its copy to "
                f"{', '.join(a.addr_spec for a in self.bcc)} stays in that mailbox")


def _configured(opts: Options, key: str, display_name: str = "") -> list[Address]:
    value = ", ".join(opts.strings(key)) if key == "bcc" else opts.text(key) or ""
    if key == "from_address" and not value:
        raise ChannelConfigError(key, "is required")
    try:
        return parse_address_list(value, display_name)
    except ValueError as exc:
        raise ChannelConfigError(key, str(exc)) from exc


@hookimpl
def relances_register_channels(register: RegisterChannel) -> None:
    register("email", EmailChannel)
