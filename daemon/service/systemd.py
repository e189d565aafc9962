"""The sd_notify protocol, written here rather than pulled from python-systemd.

A service started with ``Type=notify`` tells systemd how it is doing by
sending datagrams of ``KEY=value`` lines to the AF_UNIX socket named in
``$NOTIFY_SOCKET`` (see sd_notify(3)).  A name starting with ``@`` is an
abstract socket.  Outside systemd the variable is unset and every method
here does nothing, so the service calls them unconditionally.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

logger = logging.getLogger(__name__)

NOTIFY_SOCKET_ENV = "NOTIFY_SOCKET"
WATCHDOG_USEC_ENV = "WATCHDOG_USEC"
WATCHDOG_PID_ENV = "WATCHDOG_PID"

# A send must never stall the event loop for long: systemd reads its
# notification socket promptly, so a full queue means something is wrong
# and dropping one STATUS line is better than freezing the daemon.
_SEND_TIMEOUT = 1.0


def _one_line(text: str) -> str:
    # A newline would end the field and let the rest pose as another key.
    return " ".join(text.split())


class Notifier:
    """Sends state changes to systemd.

    ``address`` is the socket to notify; ``None`` reads ``$NOTIFY_SOCKET``.
    An empty or unset address makes every method a no-op that returns
    False.  The methods return True when the datagram was sent; they never
    raise: a failure is logged once as a warning, then at debug level.
    """

    def __init__(self, address: str | None = None, *,
                 environ: Mapping[str, str] | None = None) -> None:
        if address is None:
            address = (os.environ if environ is None else environ).get(NOTIFY_SOCKET_ENV, "")
        self.address = address
        self._socket: socket.socket | None = None
        self._warned = False

    @property
    def enabled(self) -> bool:
        """Whether a notification socket is configured."""
        return bool(self.address)

    def _target(self) -> str | bytes:
        if self.address.startswith("@"):
            return b"\0" + self.address[1:].encode()
        return self.address

    def notify(self, *fields: str) -> bool:
        """Send ``fields`` (each ``KEY=value``) as one datagram."""
        if not self.enabled:
            return False
        message = "\n".join(fields).encode()
        try:
            if self._socket is None:
                if not self.address.startswith(("/", "@")):
                    # systemd 254 added vsock: addresses for VMs; not handled here.
                    raise OSError(f"unsupported notification address {self.address!r}")
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                sock.settimeout(_SEND_TIMEOUT)
                self._socket = sock
            self._socket.sendto(message, self._target())
        except OSError as exc:
            log = logger.debug if self._warned else logger.warning
            log("cannot notify systemd at %s: %s", self.address, exc)
            self._warned = True
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        """The service has started (``READY=1``), with an optional status line."""
        fields = ["READY=1"]
        if status:
            fields.append(f"STATUS={_one_line(status)}")
        return self.notify(*fields)

    def status(self, text: str) -> bool:
        """One line shown by ``systemctl status`` (``STATUS=``)."""
        return self.notify(f"STATUS={_one_line(text)}")

    def watchdog(self) -> bool:
        """The service is alive (``WATCHDOG=1``); see :func:`watchdog_interval`."""
        return self.notify("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> bool:
        """The service is shutting down (``STOPPING=1``)."""
        fields = ["STOPPING=1"]
        if status:
            fields.append(f"STATUS={_one_line(status)}")
        return self.notify(*fields)

    def reloading(self, status: str | None = None) -> bool:
        """The service is reloading its configuration (``RELOADING=1``).

        ``MONOTONIC_USEC`` is what ``Type=notify-reload`` requires to match
        the reload to the request; send :meth:`ready` once the reload is done.
        """
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        fields = ["RELOADING=1", f"MONOTONIC_USEC={usec}"]
        if status:
            fields.append(f"STATUS={_one_line(status)}")
        return self.notify(*fields)

    def extend_timeout(self, seconds: float) -> bool:
        """Ask for ``seconds`` more before systemd gives up on a start or stop
        in progress (``EXTEND_TIMEOUT_USEC``).
        """
        return self.notify(f"EXTEND_TIMEOUT_USEC={max(0, int(seconds * 1_000_000))}")

    def close(self) -> None:
        sock, self._socket = self._socket, None
        if sock is not None:
            sock.close()

    def __enter__(self) -> Notifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds between two ``WATCHDOG=1`` pings, or None when no watchdog is set.

    systemd sets ``$WATCHDOG_USEC`` from ``WatchdogSec=``, and
    ``$WATCHDOG_PID`` to the process it is meant for (a child that inherited
    the variables must not answer for its parent).  Pinging at half the
    interval is what sd_watchdog_enabled(3) recommends.
    """
    env = os.environ if environ is None else environ
    try:
        usec = int(env.get(WATCHDOG_USEC_ENV, ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    pid = env.get(WATCHDOG_PID_ENV)
    if pid:
        try:
            if int(pid) != os.getpid():
                return None
        except ValueError:
            return None
    return usec / 1_000_000 / 2
