"""A statement that cannot be prepared is a failure with its reason, not a cancellation."""

from __future__ import annotations

import asyncio
from pathlib import Path

from helpers import Cli
from sqlalchemy import select

from relances.daemon.config import load_settings
from relances.daemon.models import Reminder
from relances.daemon.storage import App


def _outbox(settings_path: Path) -> list[tuple[str, str | None]]:
    async def read() -> list[tuple[str, str | None]]:
        app = App(settings=load_settings(settings_path), user="tester")
        try:
            async with app.sessions() as session:
                rows = await session.execute(select(Reminder.state, Reminder.last_error)
                                             .order_by(Reminder.id))
                return [(state, error) for state, error in rows]
        finally:
            await app.close()
    return asyncio.run(read())


def test_a_level_3_statement_without_its_invoice_copy_fails_and_says_why(seeded: Cli) -> None:
    seeded("set-level COD_F1026 3")
    out = seeded(["send", "--statement", "--customer", "INT01", "--channel", "archive",
                  "--retry-for", "0"], ok=False)
    [(state, error)] = _outbox(seeded.settings)
    assert state == "failed", (state, error, out.stdout, out.stderr)
    assert error is not None and "COD_F1026" in error and "copy to attach is missing" in error
