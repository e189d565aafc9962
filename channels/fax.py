"""The ``fax`` channel: HylaFAX's ``sendfax``, or an email-to-fax gateway.

Options (``settings.channels.fax``):

- ``backend``: ``hylafax`` (default) or ``gateway``;
- ``dial_format``: how the number is written, after normalisation to
  E.164 (``+33145678901``): ``e164`` (default), ``national``
  (``0145678901``), ``international`` (``0033145678901``) or ``digits``
  (``33145678901``); ``dial_prefix`` is put in front (an outside line's
  ``0``, say);
- hylafax: ``host`` (``host[:port]`` of hfaxd, default ``localhost``),
  ``cover_page`` (default false), ``resolution`` (``fine`` or ``low``),
  ``page_size`` (default ``a4``), ``max_dials``, ``max_tries``,
  ``extra_args`` (more ``sendfax`` arguments), ``timeout``,
  ``sendfax_command``;
- gateway: ``address_template`` such as ``"{number}@fax.example"``, the
  SMTP keys of the email channel (``host``, ``port``, ``security``,
  ``username``, ``password_env``...) and ``from_address``, ``from_name``.
"""

from __future__ import annotations

import logging
import re
import tempfile
from pathlib import Path

from relances.channels._options import Options
from relances.channels._process import run
from relances.channels.smtp import SMTP_OPTIONS, SmtpClient, build_message, parse_address
from relances.channels.smtp import smtp_settings as read_smtp_settings
from relances.plugins import (
    Attachment,
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

COMMON_OPTIONS = frozenset({"backend", "dial_format", "dial_prefix"})
HYLAFAX_OPTIONS = COMMON_OPTIONS | {
    "host", "cover_page", "resolution", "page_size", "max_dials", "max_tries",
    "extra_args", "timeout", "sendfax_command",
}
GATEWAY_OPTIONS = COMMON_OPTIONS | SMTP_OPTIONS | {"address_template", "from_address", "from_name"}
DIAL_FORMATS = ("e164", "national", "international", "digits")
_REQUEST_ID = re.compile(r"request id is (\d+)")
_SEPARATORS = re.compile(r"[\s.\-/()]")


def normalise_number(number: str, *, country_code: str = "33") -> str:
    """A fax number in E.164 form (``+33145678901``).

    French national numbers (``01 45 67 89 01``, ten digits from ``0``) get
    ``+33``; ``0033...`` and ``+33 (0)1...`` are understood; other countries
    must be written with ``+`` or ``00``.  Raises ValueError otherwise.
    """
    raw = number.strip()
    compact = raw.replace("(0)", "")
    compact = _SEPARATORS.sub("", compact)
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    if compact.startswith("+"):
        digits = compact[1:]
        if not digits.isdigit() or not 8 <= len(digits) <= 15:
            raise ValueError(f"{raw!r} is not a fax number")
        if digits.startswith(country_code + "0"):
            digits = country_code + digits[len(country_code) + 1:]
        return "+" + digits
    if compact.isdigit() and len(compact) == 10 and compact.startswith("0"):
        return f"+{country_code}{compact[1:]}"
    raise ValueError(f"{raw!r} is not a fax number (write +CC... for a foreign one)")


def dial_string(e164: str, dial_format: str, prefix: str = "") -> str:
    """Write an E.164 number the way the fax server or gateway wants it."""
    digits = e164.lstrip("+")
    if dial_format == "national" and digits.startswith("33"):
        written = "0" + digits[2:]
    elif dial_format == "international":
        written = "00" + digits
    elif dial_format == "digits":
        written = digits
    else:
        written = e164
    return prefix + written


class FaxChannel(Channel):
    """Common part: reachability and numbers.  See the two backends below."""

    name = "fax"
    label = "Fax"

    def __init__(self, opts: Options) -> None:
        self.dial_format = opts.choice("dial_format", DIAL_FORMATS, self.default_format)
        self.dial_prefix = opts.text("dial_prefix", "") or ""
        if not re.fullmatch(r"[0-9*#,]*", self.dial_prefix):
            raise ChannelConfigError("dial_prefix", "may hold only digits, *, # and commas")

    default_format = "e164"

    def can_reach(self, recipient: Recipient) -> bool:
        try:
            normalise_number(recipient.fax or "")
        except ValueError:
            return False
        return True

    def number(self, delivery: Delivery) -> str:
        try:
            e164 = normalise_number(delivery.recipient.fax or "")
        except ValueError as exc:
            raise DeliveryError(
                f"customer {delivery.recipient.code}: {exc}", retryable=False
            ) from exc
        return dial_string(e164, self.dial_format, self.dial_prefix)


class HylafaxChannel(FaxChannel):
    """Queues each delivery on a HylaFAX server with ``sendfax``."""

    def __init__(self, opts: Options) -> None:
        super().__init__(opts)
        self.host = opts.text("host", "localhost") or "localhost"
        self.timeout = opts.number("timeout", 60.0)
        self.sendfax = opts.text("sendfax_command", "sendfax") or "sendfax"
        args = [] if opts.flag("cover_page", False) else ["-n"]
        args.append("-m" if opts.choice("resolution", ("fine", "low"), "fine") == "fine"
                    else "-l")
        args += ["-s", opts.text("page_size", "a4") or "a4"]
        if "max_dials" in opts.raw:
            args += ["-T", str(opts.integer("max_dials", 12, minimum=1))]
        if "max_tries" in opts.raw:
            args += ["-t", str(opts.integer("max_tries", 3, minimum=1))]
        self.args = args + opts.strings("extra_args")

    def sendfax_argv(self, delivery: Delivery, number: str, path: Path) -> list[str]:
        # The job tag lets an operator find the reminder in faxstat and
        # recognise a resend; HylaFAX wants it short and printable.
        tag = re.sub(r"[^A-Za-z0-9_.:-]", "_", delivery.key)[:64]
        return [self.sendfax, "-h", self.host, *self.args, "-i", tag, "-d", number, str(path)]

    async def send(self, delivery: Delivery) -> Receipt:
        number = self.number(delivery)
        with tempfile.TemporaryDirectory(prefix="relances-fax-") as folder:
            path = Path(folder) / "document.pdf"
            path.write_bytes(delivery.pdf)
            result = await run(self.sendfax_argv(delivery, number, path), timeout=self.timeout)
        match = _REQUEST_ID.search(result.output)
        if result.returncode == 0 and match:
            return Receipt(channel=self.name, reference=match.group(1),
                           detail=f"to {number} via {self.host}")
        message = " ".join(result.output.split()) or f"exit status {result.returncode}"
        # hfaxd answers like an FTP server: 5xx replies are permanent refusals.
        permanent = re.search(r"\b5\d\d\b", message) is not None
        if "Can not reach" in message or "connect" in message.lower():
            permanent = False
        raise DeliveryError(f"sendfax to {number}: {message}", retryable=not permanent)


class GatewayChannel(FaxChannel):
    """Emails the PDF to an email-to-fax gateway, one address per number."""

    default_format = "digits"

    def __init__(self, opts: Options) -> None:
        super().__init__(opts)
        template = opts.pattern("address_template", ("number",), required=True)
        assert template is not None
        try:
            sample = template.format(number="33145678901")
            parse_address(sample)
        except (KeyError, IndexError, ValueError) as exc:
            raise ChannelConfigError(
                "address_template", f"{template!r} must give an address from {{number}}: {exc}"
            ) from exc
        self.template = template
        from_address = opts.text("from_address", required=True)
        assert from_address is not None
        try:
            self.sender = parse_address(from_address, opts.text("from_name") or "")
        except ValueError as exc:
            raise ChannelConfigError("from_address", str(exc)) from exc
        self.smtp = SmtpClient(read_smtp_settings(opts))

    async def open(self) -> None:
        self.smtp.keep_open = True

    async def close(self) -> None:
        self.smtp.keep_open = False
        await self.smtp.disconnect()

    async def send(self, delivery: Delivery) -> Receipt:
        number = self.number(delivery)
        try:
            to = parse_address(self.template.format(number=number))
        except ValueError as exc:
            raise DeliveryError(f"fax gateway address for {number}: {exc}",
                                retryable=False) from exc
        # Gateways fax the attachments: send the whole document as one PDF.
        pdf = Attachment(delivery.filename, delivery.pdf)
        message = build_message(delivery, sender=self.sender, to=[to], attachments=(pdf,))
        await self.smtp.send(message, sender=self.sender.addr_spec, recipients=[to.addr_spec])
        reference = str(message["Message-ID"])
        return Receipt(channel=self.name, reference=reference,
                       detail=f"to {number} via {to.addr_spec}")


def build_fax_channel(settings: ChannelSettings) -> FaxChannel:
    backend = settings.options.get("backend", "hylafax") if settings.options else "hylafax"
    if backend == "gateway":
        return GatewayChannel(Options(settings, GATEWAY_OPTIONS))
    if backend == "hylafax":
        return HylafaxChannel(Options(settings, HYLAFAX_OPTIONS))
    raise ChannelConfigError("backend", f"must be hylafax or gateway, got {backend!r}")


@hookimpl
def relances_register_channels(register: RegisterChannel) -> None:
    register("fax", build_fax_channel)
