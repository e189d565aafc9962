"""``relances user``: accounts and API tokens from the command line."""

from __future__ import annotations

import asyncio
import hashlib

from helpers import Cli
from sqlalchemy import select
from web.support import relances

from relances.daemon.models import ApiToken, User
from relances.daemon.storage import App
from relances.daemon.web import accounts


async def _rows(cli: Cli, model: type) -> list:  # type: ignore[type-arg]
    app = App.load(cli.settings, "tester")
    try:
        async with app.sessions() as session:
            return list((await session.execute(select(model))).scalars())
    finally:
        await app.close()


def test_adding_an_account_reads_the_password_from_stdin(cli: Cli) -> None:
    out = relances(cli, ["user", "add", "Pascal Casseleux", "--role", "envoi"],
                   stdin="un mot de passe\n").stdout
    assert out == "Pascal Casseleux: account created (envoi)\n"
    [user] = asyncio.run(_rows(cli, User))
    assert user.role == "envoi" and not user.disabled
    assert user.password_hash.startswith("$argon2id$") and "un mot de passe" not in user.password_hash
    assert "Pascal Casseleux\tenvoi" in relances(cli, ["user", "list"]).stdout


def test_what_user_add_refuses(cli: Cli) -> None:
    relances(cli, ["user", "add", "alice", "--role", "admin"], stdin="long enough\n")
    again = relances(cli, ["user", "add", "alice", "--role", "lecture"], stdin="long enough\n", ok=False)
    assert again.exit_code == 1 and "a user named 'alice' already exists" in again.output
    short = relances(cli, ["user", "add", "bob", "--role", "lecture"], stdin="court\n", ok=False)
    assert short.exit_code == 1 and "at least 8 characters" in short.output
    role = relances(cli, ["user", "add", "bob", "--role", "chef"], stdin="long enough\n", ok=False)
    assert role.exit_code == 2 and "'chef' is not one of" in role.output
    assert [u.name for u in asyncio.run(_rows(cli, User))] == ["alice"]


def test_passwd_changes_the_hash(cli: Cli) -> None:
    relances(cli, ["user", "add", "alice", "--role", "admin"], stdin="first password\n")
    [before] = asyncio.run(_rows(cli, User))
    assert "alice: password changed" in relances(cli, ["user", "passwd", "alice"],
                                                 stdin="second password\n").stdout
    [after] = asyncio.run(_rows(cli, User))
    assert after.password_hash != before.password_hash
    unknown = relances(cli, ["user", "passwd", "nobody"], stdin="whatever1\n", ok=False)
    assert unknown.exit_code == 1 and "no user named 'nobody'" in unknown.output


def test_a_token_is_printed_once_and_only_its_hash_kept(cli: Cli) -> None:
    result = relances(cli, ["user", "token", "erp", "--role", "gestion"])
    token = result.stdout.splitlines()[0]
    assert token.startswith("rl_") and len(token) > 40
    assert "It is not shown again." in result.stderr
    [row] = asyncio.run(_rows(cli, ApiToken))
    assert row.token_sha256 == hashlib.sha256(token.encode()).hexdigest()
    assert token not in repr(vars(row))
    assert row.role == "gestion" and row.revoked_at is None
    assert relances(cli, ["user", "revoke", "erp"]).stdout == "erp: revoked\n"
    assert relances(cli, ["user", "revoke", "erp"]).stdout == "erp: already revoked\n"
    missing = relances(cli, ["user", "revoke", "nope"], ok=False)
    assert missing.exit_code == 1 and "no token named 'nope'" in missing.output


def test_roles_include_the_ones_before_them() -> None:
    order = ["lecture", "gestion", "envoi", "admin"]
    for i, role in enumerate(order):
        for j, needed in enumerate(order):
            assert accounts.allows(role, needed) is (i >= j), (role, needed)
