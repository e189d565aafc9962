"""The ``print`` channel: the letter on paper, through CUPS's ``lp``.

Options (``settings.channels.print``): ``printer`` (the CUPS queue,
required), ``server`` (``host[:port]`` or a socket path, as ``lp -h``),
``copies``, ``media`` (default ``A4``), ``sides`` (``one-sided``,
``two-sided-long-edge``, ``two-sided-short-edge``), ``options`` (any other
``-o name=value``), ``timeout``, ``confirm`` (default true),
``lp_command``, ``lpstat_command``, ``ipptool_command``.

A letter is stamped when CUPS reports its job *completed*, not when ``lp``
queued it: :meth:`PrintChannel.send` returns an unconfirmed receipt and
:meth:`PrintChannel.confirm` reads the job's state with CUPS's ``ipptool``
(Debian package ``cups-ipp-utils``).  A job cancelled in CUPS is a refusal
(the level's next channel sends it), an aborted one is tried again; a job
waiting on a stopped printer waits until ``daemon.confirm_within_minutes``.
Each job's title is the reminder's key, which is how :meth:`find` knows a
letter that is already in CUPS after a crash.  ``confirm: false`` stamps as
soon as ``lp`` returns, for a CUPS that keeps no job history.
"""

from __future__ import annotations

import logging
import re
import shutil

from relances.channels._options import Options
from relances.channels._process import run
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

OPTIONS = frozenset({
    "printer", "server", "copies", "media", "sides", "options", "timeout", "confirm",
    "lp_command", "lpstat_command", "ipptool_command",
})
SIDES = ("one-sided", "two-sided-long-edge", "two-sided-short-edge")
_REQUEST_ID = re.compile(r"request id is (\S+)")
_OPTION_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")
_ATTRIBUTE = re.compile(r"^\s*([a-z-]+) \([^)]*\) = (.*)$")
# ipptool's request files: one job's state, and every job of the queue.
GET_JOB = """{
  OPERATION Get-Job-Attributes
  GROUP operation-attributes-tag
  ATTR charset attributes-charset utf-8
  ATTR naturalLanguage attributes-natural-language en
  ATTR uri printer-uri $uri
  ATTR integer job-id $job_id
  ATTR name requesting-user-name $user
  ATTR keyword requested-attributes job-state,job-state-reasons,job-media-sheets-completed
  STATUS successful-ok
  DISPLAY job-state
  DISPLAY job-state-reasons
  DISPLAY job-media-sheets-completed
}
"""
GET_JOBS = """{
  OPERATION Get-Jobs
  GROUP operation-attributes-tag
  ATTR charset attributes-charset utf-8
  ATTR naturalLanguage attributes-natural-language en
  ATTR uri printer-uri $uri
  ATTR name requesting-user-name $user
  ATTR keyword which-jobs all
  ATTR keyword requested-attributes job-id,job-state,job-name
  STATUS successful-ok
}
"""
UNDER_WAY = frozenset({"pending", "pending-held", "processing", "processing-stopped"})


def attributes(output: str) -> dict[str, str]:
    """The ``name (type) = value`` lines ipptool prints, as a mapping."""
    return {m.group(1): m.group(2) for m in map(_ATTRIBUTE.match, output.splitlines()) if m}


def job_title(key: str) -> str:
    """The title of a reminder's print job: its key, in what CUPS shows as is."""
    return re.sub(r"[^A-Za-z0-9_.:,-]", "_", key)[:200]


class PrintChannel(Channel):
    """Prints each delivery's PDF on one CUPS queue."""

    name = "print"
    label = "Courrier"

    def __init__(self, settings: ChannelSettings) -> None:
        opts = Options(settings, OPTIONS)
        printer = opts.text("printer", required=True)
        assert printer is not None
        if printer.startswith("-") or not printer.isprintable() or " " in printer:
            raise ChannelConfigError("printer", f"{printer!r} is not a CUPS queue name")
        self.printer = printer
        self.server = opts.text("server")
        self.copies = opts.integer("copies", 1, minimum=1)
        self.timeout = opts.number("timeout", 60.0)
        self.lp = opts.text("lp_command", "lp") or "lp"
        self.lpstat = opts.text("lpstat_command", "lpstat") or "lpstat"
        self.ipptool = opts.text("ipptool_command", "ipptool") or "ipptool"
        self.confirms = opts.flag("confirm", True)
        if self.confirms and shutil.which(self.ipptool) is None:
            raise ChannelConfigError("confirm", f"{self.ipptool} is not installed: it reads a job's "
                                     "state from CUPS (Debian package cups-ipp-utils); install "
                                     "it, or set confirm: false to stamp when lp queues the job")
        job_options = {"media": opts.text("media", "A4") or "A4"}
        sides = opts.raw.get("sides")
        if sides is not None:
            job_options["sides"] = opts.choice("sides", SIDES, "one-sided")
        for name, value in opts.mapping("options").items():
            if not _OPTION_NAME.match(name):
                raise ChannelConfigError(f"options.{name}", "is not a CUPS option name")
            job_options[name] = value
        self.job_options = job_options

    def _server_args(self) -> list[str]:
        return ["-h", self.server] if self.server else []

    def lp_argv(self, delivery: Delivery) -> list[str]:
        """The ``lp`` command for ``delivery``; the PDF goes on stdin."""
        argv = [self.lp, *self._server_args(), "-d", self.printer, "-n", str(self.copies)]
        argv += ["-t", job_title(delivery.key)]
        for name, value in self.job_options.items():
            argv += ["-o", f"{name}={value}" if value else name]
        return argv

    def can_reach(self, recipient: Recipient) -> bool:
        """A printed letter goes in a window envelope: it needs a postal address."""
        return recipient.has_postal_address()

    async def send(self, delivery: Delivery) -> Receipt:
        if not delivery.recipient.has_postal_address():
            raise DeliveryError(f"customer {delivery.recipient.code} has no postal address (a "
                                "street line and a city): nothing to print in the window",
                                retryable=False)
        await self._check_printer()
        result = await run(self.lp_argv(delivery), stdin=delivery.pdf, timeout=self.timeout)
        match = _REQUEST_ID.search(result.stdout)
        if result.returncode == 0 and match:
            return Receipt(channel=self.name, reference=match.group(1),
                           detail=f"printer {self.printer}", confirmed=not self.confirms)
        raise await self._lp_error(result.output)

    def _uri(self) -> str:
        server = self.server or "localhost"
        if server.startswith("/"):  # a socket: ipptool reaches the local CUPS by name
            server = "localhost"
        return f"ipp://{server}/printers/{self.printer}"

    async def _ipp(self, request: str, *args: str) -> tuple[bool, str]:
        """Send one IPP request with ipptool, as the user ``lp`` ran as: CUPS shows
        a job's title only to its owner."""
        argv = [self.ipptool, "-T", f"{max(int(self.timeout), 1)}", *args, self._uri(),
                "/dev/stdin"]
        result = await run(argv, stdin=request.encode(), timeout=self.timeout)
        return result.returncode == 0, result.output

    async def confirm(self, receipt: Receipt) -> Receipt | None:
        """Done when CUPS reports the job completed; None while it is queued,
        printing or held on a stopped printer, or while CUPS cannot be asked."""
        job_id = receipt.reference.rsplit("-", 1)[-1]
        if not job_id.isdigit():
            raise DeliveryError(f"{receipt.reference!r} is not a CUPS job id", retryable=False)
        ok, output = await self._ipp(GET_JOB, "-t", "-d", f"job_id={job_id}")
        if not ok:
            logger.warning("cannot read the state of print job %s: %s", receipt.reference,
                           " ".join(output.split())[:300])
            return None
        found = attributes(output)
        state = found.get("job-state", "")
        if state == "completed":
            sheets = found.get("job-media-sheets-completed", "")
            # CUPS counts sheets as its backend reports them: none is no proof of none.
            counted = sheets.isdigit() and int(sheets) > 0
            detail = f"printer {self.printer}" + (f", {sheets} sheet(s)" if counted else "")
            return Receipt(self.name, receipt.reference, detail=detail, confirmed=True)
        if state in UNDER_WAY:
            return None
        reasons = found.get("job-state-reasons", "") or "no reason given"
        if state == "canceled":
            raise DeliveryError(f"print job {receipt.reference} was cancelled in CUPS ({reasons})",
                                retryable=False)
        raise DeliveryError(f"print job {receipt.reference} ended {state or 'in an unknown state'} "
                            f"({reasons})", retryable=True)

    async def find(self, delivery: Delivery) -> Receipt | None:
        """The newest job of this queue titled with the reminder's key, unless it failed."""
        if not self.confirms:
            return None
        ok, output = await self._ipp(GET_JOBS, "-t", "-v")
        if not ok:
            raise DeliveryError(f"cannot list the jobs of {self.printer}: "
                                f"{' '.join(output.split())[:300]}", retryable=True)
        title = job_title(delivery.key)
        # -v prints the answer's job groups apart: "-- separator --" between two.
        answer = output.split("status-code = ", 1)[-1]
        jobs = [attributes(group) for group in answer.split("-- separator --")]
        found = [(int(job["job-id"]), job.get("job-state", "")) for job in jobs
                 if job.get("job-name") == title and job.get("job-id", "").isdigit()]
        for job_id, state in sorted(found, reverse=True):
            if state in UNDER_WAY or state == "completed":
                return Receipt(self.name, f"{self.printer}-{job_id}",
                               detail=f"printer {self.printer}", confirmed=state == "completed")
        return None

    async def _check_printer(self) -> None:
        """Refuse a stopped queue: ``lp`` would accept the job and leave it
        waiting, and the letter would be stamped as sent while it is not.
        The refusal is retryable: a stopped printer (paper jam, empty tray)
        is an operator's matter and the letter will go once it is restarted.
        """
        result = await run([self.lpstat, *self._server_args(), "-p", self.printer],
                           timeout=self.timeout)
        if result.returncode != 0:
            raise await self._lp_error(result.output)
        if f"printer {self.printer} disabled" in result.stdout:
            reason = " ".join(result.stdout.split("\n", 1)[-1].split())
            raise DeliveryError(
                f"printer {self.printer} is stopped ({reason or 'no reason given'}); "
                f"restart it with: cupsenable {self.printer}",
                retryable=True,
            )

    async def _lp_error(self, output: str) -> DeliveryError:
        """Tell an unknown queue (permanent) from an unreachable CUPS (retryable):
        ``lp`` says the same thing for both.
        """
        message = " ".join(output.split()) or "no message"
        if "does not exist" in message or "Invalid destination" in message:
            scheduler = await run([self.lpstat, *self._server_args(), "-r"],
                                  timeout=self.timeout)
            if "scheduler is running" not in scheduler.stdout:
                where = self.server or "the local CUPS"
                return DeliveryError(f"CUPS is not running on {where}", retryable=True)
            return DeliveryError(
                f"unknown printer {self.printer!r} (lpstat -p lists the queues)",
                retryable=False,
            )
        if "not accepting jobs" in message:
            return DeliveryError(
                f"printer {self.printer} is rejecting jobs: {message} "
                f"(cupsaccept {self.printer} reopens it)",
                retryable=True,
            )
        return DeliveryError(f"lp failed on {self.printer}: {message}", retryable=True)


@hookimpl
def relances_register_channels(register: RegisterChannel) -> None:
    register("print", PrintChannel)
