"""What stands in front of every route: the security headers, the limit on
failed logins, and the rule for where a form may send the browser back.

The limit counts failed logins in memory, per client address and per
account name, over ``web.login_window_seconds``: past
``web.login_attempts`` the login is refused, even with the right
password, until the oldest failure leaves the window.  Each instance
counts its own.
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

# No inline script nor style anywhere, so the policy can forbid them.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


async def security_headers(request: Request,
                           call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    response = await call_next(request)
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if not request.url.path.startswith("/static/"):
        # Pages show what a customer owes: no copy in shared caches nor the back button's.
        response.headers.setdefault("Cache-Control", "no-store")
    return response


class LoginLimiter:
    """Failed logins per key (an address, a name) within a sliding window."""

    MAX_KEYS = 10_000

    def __init__(self, attempts: int, window_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.attempts, self.window, self._clock = attempts, window_seconds, clock
        self._failures: defaultdict[str, deque[float]] = defaultdict(deque)

    def _recent(self, key: str) -> deque[float]:
        failures, horizon = self._failures[key], self._clock() - self.window
        while failures and failures[0] <= horizon:
            failures.popleft()
        if not failures:
            del self._failures[key]
            return deque()
        return failures

    def blocked(self, *keys: str) -> bool:
        return any(len(self._recent(key)) >= self.attempts for key in keys)

    def failed(self, *keys: str) -> None:
        if len(self._failures) > self.MAX_KEYS:  # names made up by the thousand: forget the old
            for key in list(self._failures):
                self._recent(key)
        now = self._clock()
        for key in keys:
            self._failures[key].append(now)

    def succeeded(self, name_key: str) -> None:
        self._failures.pop(name_key, None)


def safe_return(target: str | None, default: str = "/relances") -> str:
    """A path on this site to go back to after a form, never another site's address."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")) \
            or any(c in target for c in "\r\n\\"):
        return default
    return target
