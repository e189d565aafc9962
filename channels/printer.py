"""The ``print`` channel: the letter on paper, through CUPS's ``lp``.

Options (``settings.channels.print``): ``printer`` (the CUPS queue,
required), ``server`` (``host[:port]`` or a socket path, as ``lp -h``),
``copies``, ``media`` (default ``A4``), ``sides`` (``one-sided``,
``two-sided-long-edge``, ``two-sided-short-edge``), ``options`` (any other
``-o name=value``), ``timeout``, ``lp_command``, ``lpstat_command``.
"""

from __future__ import annotations

import logging
import re

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
    "printer", "server", "copies", "media", "sides", "options", "timeout",
    "lp_command", "lpstat_command",
})
SIDES = ("one-sided", "two-sided-long-edge", "two-sided-short-edge")
_REQUEST_ID = re.compile(r"request id is (\S+)")
_OPTION_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")


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
        argv += ["-t", delivery.filename or delivery.key]
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
                           detail=f"printer {self.printer}")
        raise await self._lp_error(result.output)

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
