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
  ``extra_args`` (more ``sendfax`` arguments), ``timeout``, ``confirm``
  (default true), ``spool`` (HylaFAX's spool folder, such as
  ``/var/spool/hylafax``, to read the jobs' state from its queue files
  instead of asking hfaxd), ``sendfax_command``, ``faxstat_command``;
- gateway: ``address_template`` such as ``"{number}@fax.example"``, the
  SMTP keys of the email channel (``host``, ``port``, ``security``,
  ``username``, ``password_env``...) and ``from_address``, ``from_name``.

With HylaFAX, "sent" means sent: ``sendfax`` only queues the job, so the
receipt is unconfirmed and :meth:`HylafaxChannel.confirm` follows the job
(``faxstat -s -d``, or the queue files ``sendq/qN`` and ``doneq/qN``) until
HylaFAX reports it done, with the pages sent, or failed once its own tries
are spent, which sends the reminder by the level's next channel.  The job
tag is the reminder's key, which is how :meth:`find` knows a fax already
queued after a crash.  ``confirm: false`` stamps when the job is queued.
"""

from __future__ import annotations

import asyncio
import logging
import re
import tempfile
from dataclasses import dataclass
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
    "extra_args", "timeout", "confirm", "spool", "sendfax_command", "faxstat_command",
}
GATEWAY_OPTIONS = COMMON_OPTIONS | SMTP_OPTIONS | {"address_template", "from_address", "from_name"}
DIAL_FORMATS = ("e164", "national", "international", "digits")
_REQUEST_ID = re.compile(r"request id is (\d+)")
_SEPARATORS = re.compile(r"[\s.\-/()]")
# faxstat's line for a job, as the .hylarc written for it asks: id, state, pages, tag, status.
JOB_FORMAT = "%j|%a|%P|%J|%s"
# A queue file's state number as faxstat's one-letter state (HylaFAX's Job.h).
SPOOL_STATES = {"1": "T", "2": "P", "3": "S", "4": "B", "5": "W", "6": "R", "7": "D", "8": "F"}


@dataclass(frozen=True)
class FaxJob:
    """One HylaFAX job: ``state`` is faxstat's letter (D done, F failed, others under way)."""

    job_id: str
    state: str
    tag: str
    pages: str = ""  # "sent:total"
    status: str = ""


def job_tag(key: str) -> str:
    """The tag of a reminder's fax job: its key, short and printable as HylaFAX wants."""
    return re.sub(r"[^A-Za-z0-9_.:-]", "_", key)[:64]


def read_queue_file(text: str) -> FaxJob | None:
    """A job from a queue file (``sendq/q12``, ``doneq/q12``): ``name:value`` lines."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep and name not in fields:
            fields[name] = value
    if not fields.get("jobid", "").isdigit():
        return None
    return FaxJob(fields["jobid"], SPOOL_STATES.get(fields.get("state", ""), "?"),
                  fields.get("jobtag", ""), f"{fields.get('npages', '')}:{fields.get('totpages', '')}",
                  fields.get("status", ""))


def read_faxstat(output: str) -> list[FaxJob]:
    """The jobs of ``faxstat -s -d`` printed under :data:`JOB_FORMAT`."""
    jobs = []
    for line in output.splitlines():
        parts = line.split("|", 4)
        if len(parts) == 5 and parts[0].strip().isdigit():
            job_id, state, pages, tag, status = (part.strip() for part in parts)
            jobs.append(FaxJob(job_id, state, tag, pages.replace(" ", ""), status))
    return jobs


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
        self.faxstat = opts.text("faxstat_command", "faxstat") or "faxstat"
        self.confirms = opts.flag("confirm", True)
        spool = opts.text("spool")
        self.spool = opts.settings.path(spool) if spool else None
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
        # The job tag lets an operator find the reminder in faxstat, and
        # find() recognise a job already queued.
        return [self.sendfax, "-h", self.host, *self.args, "-i", job_tag(delivery.key),
                "-d", number, str(path)]

    async def send(self, delivery: Delivery) -> Receipt:
        number = self.number(delivery)
        with tempfile.TemporaryDirectory(prefix="relances-fax-") as folder:
            path = Path(folder) / "document.pdf"
            path.write_bytes(delivery.pdf)
            result = await run(self.sendfax_argv(delivery, number, path), timeout=self.timeout)
        match = _REQUEST_ID.search(result.output)
        if result.returncode == 0 and match:
            return Receipt(channel=self.name, reference=match.group(1),
                           detail=f"to {number} via {self.host}", confirmed=not self.confirms)
        message = " ".join(result.output.split()) or f"exit status {result.returncode}"
        # hfaxd answers like an FTP server: 5xx replies are permanent refusals.
        permanent = re.search(r"\b5\d\d\b", message) is not None
        if "Can not reach" in message or "connect" in message.lower():
            permanent = False
        raise DeliveryError(f"sendfax to {number}: {message}", retryable=not permanent)


    async def jobs(self) -> list[FaxJob] | None:
        """Every job HylaFAX holds, queued and done; None when it cannot be asked."""
        if self.spool is not None:
            return await asyncio.to_thread(self._spool_jobs, self.spool)
        with tempfile.TemporaryDirectory(prefix="relances-faxstat-") as home:
            # faxstat takes its line format only from a configuration file.
            (Path(home) / ".hylarc").write_text(f'JobFmt: "{JOB_FORMAT}"\n')
            result = await run([self.faxstat, "-h", self.host, "-s", "-d"],
                               timeout=self.timeout, env={"HOME": home})
        if result.returncode != 0 or "Can not reach" in result.output:
            logger.warning("cannot read HylaFAX's queues on %s: %s", self.host,
                           " ".join(result.output.split())[:300])
            return None
        return read_faxstat(result.stdout)

    @staticmethod
    def _spool_jobs(spool: Path) -> list[FaxJob] | None:
        jobs = []
        try:
            for queue in ("sendq", "doneq"):
                for path in sorted((spool / queue).glob("q[0-9]*")):
                    job = read_queue_file(path.read_text("utf-8", "replace"))
                    if job is not None:
                        jobs.append(job)
        except OSError as exc:
            logger.warning("cannot read HylaFAX's spool %s: %s", spool, exc)
            return None
        return jobs

    async def confirm(self, receipt: Receipt) -> Receipt | None:
        """Done when HylaFAX reports the job done; a failed job (its tries spent)
        is a refusal; None while it is queued or dialling, or cannot be asked."""
        jobs = await self.jobs()
        job = next((j for j in jobs or () if j.job_id == receipt.reference), None)
        if job is None:
            if jobs is not None:
                logger.warning("HylaFAX on %s no longer knows fax job %s", self.host,
                               receipt.reference)
            return None
        if job.state == "D":
            sent, _, total = job.pages.partition(":")
            pages = f", {sent} page(s)" if sent.isdigit() and sent == total else ""
            return Receipt(self.name, receipt.reference, detail=f"{receipt.detail}{pages}".strip(", "),
                           confirmed=True)
        if job.state == "F":
            raise DeliveryError(f"fax job {job.job_id} failed: {job.status or 'no reason given'}",
                                retryable=False)
        return None

    async def find(self, delivery: Delivery) -> Receipt | None:
        """The newest job tagged with the reminder's key, unless it failed."""
        if not self.confirms:
            return None
        jobs = await self.jobs()
        if jobs is None:
            raise DeliveryError(f"cannot read HylaFAX's queues on {self.host}", retryable=True)
        tag = job_tag(delivery.key)
        for job in sorted((j for j in jobs if j.tag == tag), key=lambda j: -int(j.job_id)):
            if job.state != "F":
                return Receipt(self.name, job.job_id, detail=f"via {self.host}",
                               confirmed=job.state == "D")
        return None

    async def forget(self, receipt: Receipt) -> str | None:
        """HylaFAX's own records of the job (its log, the done queue) name the number."""
        return (f"fax job {receipt.reference}: HylaFAX on {self.host} keeps it in its job "
                "history and log (xferfaxlog) until its own clean-up (faxcron)")


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
