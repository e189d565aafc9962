"""Fixtures of the command-line tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from sqlalchemy import Executable

from relances.daemon import storage


@pytest.fixture
def change_ledger(database_url: str) -> Callable[[Executable], None]:
    """Run one statement on the test's database behind the commands' back, as
    another writer of the ledger could (the web screen, an older release): for
    values the imports would refuse."""
    def change(statement: Executable) -> None:
        async def run() -> None:
            engine = storage.create_engine(database_url)
            try:
                async with engine.begin() as conn:
                    await conn.execute(statement)
            finally:
                await engine.dispose()

        asyncio.run(run())

    return change
