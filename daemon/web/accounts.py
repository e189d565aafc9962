"""The people who log in to the web screen and the tokens programs use for the API.

Passwords are kept as argon2 hashes (argon2-cffi's defaults); an API token
is shown once when it is made and only its SHA-256 is kept, so a stolen
database gives no way in.  Roles each allow what the ones before them
allow: ``lecture`` reads, ``gestion`` records payments, holds, levels and
notes, ``envoi`` sends, ``admin`` manages accounts and letters.

Each function works in the caller's transaction; the command line
(``relances user``) and the web screen call the same ones.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Sequence

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from relances.daemon.errors import RelancesError
from relances.daemon.models import ROLES, ApiToken, User, utcnow

MIN_PASSWORD = 8
TOKEN_PREFIX = "rl_"
_hasher = PasswordHasher()
# Checked when the name is unknown, so that a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class AccountError(RelancesError):
    """An account or a token that does not exist, already exists, or a password refused."""


def allows(role: str, needed: str) -> bool:
    """Whether ``role`` may do what ``needed`` allows (roles include those before them)."""
    return ROLES.index(role) >= ROLES.index(needed)


def check_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError(f"a role is {', '.join(ROLES)}, not {role!r}")
    return role


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"a password has at least {MIN_PASSWORD} characters")
    return password


async def hash_password(password: str) -> str:
    # argon2 takes tens of milliseconds of CPU on purpose: not on the event loop.
    return await asyncio.to_thread(_hasher.hash, check_password(password))


async def _verify(hashed: str, password: str) -> bool:
    def verify() -> bool:
        try:
            return _hasher.verify(hashed, password)
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(verify)


async def user_by_name(session: AsyncSession, name: str) -> User:
    user = await session.scalar(select(User).where(User.name == name))
    if user is None:
        raise AccountError(f"no user named {name!r}")
    return user


async def add_user(session: AsyncSession, name: str, *, role: str, password: str) -> User:
    """Create an account; the name must be new."""
    name = name.strip()
    if not name:
        raise AccountError("a user needs a name")
    if await session.scalar(select(User.id).where(User.name == name)) is not None:
        raise AccountError(f"a user named {name!r} already exists")
    user = User(name=name, role=check_role(role), password_hash=await hash_password(password))
    session.add(user)
    await session.flush()
    return user


async def set_password(session: AsyncSession, name: str, password: str) -> None:
    """Change a user's password: sessions opened with the old one end."""
    user = await user_by_name(session, name)
    user.password_hash = await hash_password(password)


async def set_role(session: AsyncSession, name: str, role: str) -> str:
    """Change a user's role; returns the previous one."""
    user = await user_by_name(session, name)
    previous, user.role = user.role, check_role(role)
    return previous


async def set_disabled(session: AsyncSession, name: str, disabled: bool) -> None:
    (await user_by_name(session, name)).disabled = disabled


async def authenticate(session: AsyncSession, name: str, password: str) -> User | None:
    """The user whose name and password these are, unless disabled; else None."""
    user = await session.scalar(select(User).where(User.name == name))
    if user is None:
        await _verify(_DUMMY_HASH, password)
        return None
    if not await _verify(user.password_hash, password) or user.disabled:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = await hash_password(password)
    return user


async def active_user(session: AsyncSession, name: str) -> User | None:
    """The account a session names, if it still exists and is not disabled."""
    user = await session.scalar(select(User).where(User.name == name))
    return None if user is None or user.disabled else user


async def users(session: AsyncSession) -> Sequence[User]:
    return (await session.execute(select(User).order_by(User.name))).scalars().all()


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


async def create_token(session: AsyncSession, name: str, *, role: str) -> str:
    """Make an API token named ``name``; returns the token, which is not kept."""
    name = name.strip()
    if not name:
        raise AccountError("a token needs a name")
    if await session.scalar(select(ApiToken.id).where(ApiToken.name == name)) is not None:
        raise AccountError(f"a token named {name!r} already exists")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(name=name, role=check_role(role), token_sha256=token_digest(token)))
    await session.flush()
    return token


async def revoke_token(session: AsyncSession, name: str) -> bool:
    """Revoke the token named ``name``; False when it already was."""
    token = await session.scalar(select(ApiToken).where(ApiToken.name == name))
    if token is None:
        raise AccountError(f"no token named {name!r}")
    if token.revoked_at is not None:
        return False
    token.revoked_at = utcnow()
    return True


async def token_holder(session: AsyncSession, token: str) -> ApiToken | None:
    """The live token a bearer header presents, or None."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    found = await session.scalar(select(ApiToken).where(
        ApiToken.token_sha256 == token_digest(token), ApiToken.revoked_at.is_(None)))
    return found
