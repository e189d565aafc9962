"""Whether a level's letter joins the copy of the invoice: as set on the web
screen's letter editor (table ``letter_options``), else as the settings say
(``policies.<name>.levels.<N>.attach_invoice``)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from relances.daemon.config import Settings
from relances.daemon.models import LetterOption, utcnow

DEFAULT_POLICY = "default"


def policy_name(settings: Settings, wanted: str | None) -> str:
    """The policy a customer's ``policy`` field resolves to (as :meth:`Settings.policy`)."""
    return wanted if wanted is not None and wanted in settings.policies else DEFAULT_POLICY


async def attach_choices(session: AsyncSession) -> dict[tuple[str, int], bool]:
    """Every (policy, level) a person set, and what they chose."""
    rows = await session.execute(select(LetterOption.policy, LetterOption.level,
                                        LetterOption.attach_invoice))
    return {(policy, level): attach for policy, level, attach in rows}


async def attach_invoice(session: AsyncSession, settings: Settings, policy: str | None,
                         level: int) -> bool:
    """Whether a letter of ``level`` under ``policy`` joins the invoice's copy."""
    name = policy_name(settings, policy)
    chosen = await session.scalar(select(LetterOption.attach_invoice).where(
        LetterOption.policy == name, LetterOption.level == level))
    return settings.policy(name).level(level).attach_invoice if chosen is None else chosen


async def set_attach_invoice(session: AsyncSession, settings: Settings, policy: str, level: int,
                             attach: bool, *, user: str) -> None:
    """Record a person's choice, in the caller's transaction."""
    name = policy_name(settings, policy)
    row = await session.scalar(select(LetterOption).where(
        LetterOption.policy == name, LetterOption.level == level))
    if row is None:
        session.add(LetterOption(policy=name, level=level, attach_invoice=attach,
                                 updated_by=user, updated_at=utcnow()))
    else:
        row.attach_invoice, row.updated_by, row.updated_at = attach, user, utcnow()
    await session.flush()
