"""Render workers start with their owner and die with it, even on kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from helpers import ROOT

SCRIPT = """
import asyncio, sys
from relances.daemon.config import load_settings
from relances.daemon.letters.pool import Renderer

async def main():
    renderer = Renderer(load_settings(sys.argv[1]), workers=2)
    await renderer.warm()
    print(" ".join(str(p) for p in renderer.worker_pids), flush=True)
    await asyncio.sleep(600)

asyncio.run(main())
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ")[1].startswith("Z"))


def test_workers_are_started_by_warm_and_die_with_a_killed_owner() -> None:
    owner = subprocess.Popen([sys.executable, "-c", SCRIPT, str(ROOT / "settings.yaml")],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None
        pids = [int(p) for p in owner.stdout.readline().split()]
        assert len(pids) == 2 and all(alive(p) for p in pids)
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        if owner.stdout is not None:
            owner.stdout.close()
    deadline = time.monotonic() + 20
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(alive(p) for p in pids), "render workers outlived their owner"
