"""Fixtures of the web screen's tests: accounts of every role, a logged-in test client.

The route tests drive the application with Starlette's test client, on
SQLite and PostgreSQL (the ``cli`` fixture's database); the browser tests
(test_browser.py) start a real server instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from helpers import Cli
from web.support import HOSTILE, PASSWORD, Browser, make_client, relances

from relances.daemon.models import ROLES, User
from relances.daemon.storage import App
from relances.daemon.web import accounts


@pytest.fixture
def people(seeded: Cli, tsv) -> Cli:  # type: ignore[no-untyped-def]
    """The seed's invoices, two customers with hostile names, and one account per role."""
    quoted = ['"' + name.replace('"', '""') + '"' for name in HOSTILE]  # the export's quoting
    rows = [f"EVIL{i}\t\t{name}\tx@example.org\t01/02/2024\tEV-{i}\t\t\t100,00\t100,00\t"
            f"01/03/2024\tVirement\t\t\t\t\t" for i, name in enumerate(quoted, 1)]
    seeded(["import", "invoices", str(tsv(*rows))])
    relances(seeded, ["user", "add", "gestion", "--role", "gestion"], stdin=PASSWORD + "\n")
    asyncio.run(_more_accounts(seeded.settings))
    return seeded


async def _more_accounts(settings: Path) -> None:
    # The other roles' accounts share the first one's hash: argon2 is slow on purpose,
    # and `relances user add` is tested on its own (test_users.py).
    app = App.load(settings, "tester")
    try:
        async with app.sessions.begin() as session:
            hashed = (await accounts.user_by_name(session, "gestion")).password_hash
            session.add_all(User(name=role, role=role, password_hash=hashed)
                            for role in ROLES if role != "gestion")
    finally:
        await app.close()


@pytest.fixture
def client(people: Cli) -> Iterator[TestClient]:
    with make_client(people.settings) as test_client:
        yield test_client


@pytest.fixture
def browser(client: TestClient) -> Browser:
    return Browser(client)


@pytest.fixture
def as_role(client: TestClient):  # type: ignore[no-untyped-def]
    """A logged-in ``Browser`` for a role's account."""

    def log_in(role: str) -> Browser:
        browser = Browser(client)
        client.cookies.clear()
        assert browser.login(role).status_code == 303
        return browser

    return log_in
