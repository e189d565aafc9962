"""Running ``lp``, ``ipptool``, ``sendfax`` and ``faxstat`` without blocking the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from relances.plugins import DeliveryError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Completed:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return (self.stdout + "\n" + self.stderr).strip()


async def run(argv: Sequence[str], *, stdin: bytes | None = None, timeout: float,
              env: Mapping[str, str] | None = None) -> Completed:
    """Run ``argv`` (never through a shell) with ``LC_ALL=C`` so that the
    messages parsed afterwards are the English ones; ``env`` adds to the
    environment.

    A missing program raises a permanent :class:`DeliveryError`; a timeout
    kills the process and raises a retryable one.
    """
    env = {**os.environ, **(env or {}), "LC_ALL": "C", "LANG": "C"}
    logger.debug("running %s", " ".join(argv))
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
    except FileNotFoundError as exc:
        raise DeliveryError(f"{argv[0]} is not installed: {exc}", retryable=False) from exc
    except PermissionError as exc:
        raise DeliveryError(f"cannot run {argv[0]}: {exc}", retryable=False) from exc
    try:
        out, err = await asyncio.wait_for(process.communicate(stdin), timeout)
    except TimeoutError as exc:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        reason = f"{argv[0]} did not answer within {timeout:g} s"
        raise DeliveryError(reason, retryable=True) from exc
    except asyncio.CancelledError:
        # A shutdown must not leave an lp or sendfax behind.
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        raise
    return Completed(
        process.returncode if process.returncode is not None else -1,
        out.decode("utf-8", "replace"),
        err.decode("utf-8", "replace"),
    )
