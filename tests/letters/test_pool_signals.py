"""Render workers outlive a Ctrl-C or a hangup: only the parent stops them."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest
from letters_fixtures import (  # noqa: F401
    AS_OF,
    letters_settings_fixture,
    pdf_text,
    sessions_fixture,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from relances.daemon.config import Settings
from relances.daemon.letters.documents import LetterJob, prepare_letter
from relances.daemon.letters.pool import Renderer


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie is a worker that died, not yet reaped


async def job_for(sessions: async_sessionmaker[AsyncSession], settings: Settings) -> LetterJob:
    async with sessions() as session:
        return await prepare_letter(session, settings, "COD_F1026", as_of=AS_OF)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGHUP], ids=["SIGINT", "SIGHUP"])
async def test_workers_ignore_interrupt_and_hangup(
        sessions: async_sessionmaker[AsyncSession], letters_settings: Settings,
        signum: signal.Signals) -> None:
    job = await job_for(sessions, letters_settings)
    async with Renderer(letters_settings, workers=2) as renderer:
        await asyncio.gather(*(renderer.render(job) for _ in range(4)))
        pids = renderer.worker_pids
        assert pids
        for pid in pids:
            os.kill(pid, signum)
        # A signal with the default action kills at once; give it the time to.
        await asyncio.sleep(0.5)
        assert [pid for pid in pids if not alive(pid)] == []
        rendered = await renderer.render(job)
        assert sorted(renderer.worker_pids) == sorted(pids)
    text = pdf_text(rendered.letter_pdf)
    assert "INTEL" in text and "COD_F1026" in text
