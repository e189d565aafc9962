"""The outbox: what is due to leave, queued once, claimed with a lease.

A reminder is queued in the same transaction that decides it is due, under
a key unique per invoice (or statement), level and channels, so however
many runs decide it, it is queued once; ``send --force`` queues the same
row again.  Dispatchers claim due rows with a lease (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL, so several daemons share one queue), which they
renew while the reminder is in flight (:mod:`.leases`); a row whose lease
ran out, because its daemon died, is claimed again.  Retries are scheduled
in the row itself, never in memory.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, String, and_, case, cast, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from relances.daemon.config import DaemonSettings, Settings
from relances.daemon.ledger.due import contact_waited, due_letters, remindable
from relances.daemon.models import Customer, Invoice, Reminder, utcnow
from relances.daemon.storage import upsert

log = logging.getLogger(__name__)

PENDING, SENDING, SENT, FAILED, CANCELLED = "pending", "sending", "sent", "failed", "cancelled"
AWAITING = "awaiting"  # the channel took it and has not yet confirmed it left


@dataclass(frozen=True)
class Request:
    """What to queue: the CLI's ``send`` options, or the daemon's defaults."""

    as_of: dt.date | None = None
    customer: str | None = None
    invoice: str | None = None
    statement: bool = False
    channel: str | None = None
    force: bool = False
    auto_only: bool = False  # the daemon sends only levels with auto_send
    review_only: bool = False  # only levels without auto_send: those waiting for a person


@dataclass
class Queued:
    ids: list[int] = field(default_factory=list)
    already: int = 0  # due, but already queued or sent under the same key



def _filters(request: Request) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if request.customer:
        conditions.append(Invoice.customer_id.in_(
            select(Customer.id).where(Customer.code == request.customer)))
    if request.invoice:
        conditions.append(Invoice.number == request.invoice)
    return conditions


def _once_per_key(stmt: Any, request: Request, user: str, now: dt.datetime) -> Any:
    """The ON CONFLICT clause of a queueing INSERT.

    A key already taken queues nothing; with ``--force`` the row under it
    is queued again, from the level's first channel with a fresh count of
    attempts, so one reminder keeps one row however often it is sent.  A
    row in flight under a live lease is left to its sender, and one that
    waits for its channel's confirmation to that channel.
    """
    if not request.force:
        return stmt.on_conflict_do_nothing(index_elements=["key"])
    return stmt.on_conflict_do_update(
        index_elements=["key"],
        set_={"state": PENDING, "next_attempt_at": now, "attempts": 0, "channel_index": 0,
              "lease_until": None, "claimed_by": None, "last_error": None,
              "requested_by": user, "as_of": request.as_of},
        where=and_(Reminder.state != AWAITING,
                   or_(Reminder.state != SENDING, Reminder.lease_until < now)))


def _letter_rules(settings: Settings, request: Request) -> list[tuple[str, int, str]]:
    """(policy, level, channels) of every level whose letters this request queues."""
    chosen = []
    for name, policy in settings.policies.items():
        for level in (1, 2, 3):
            rules = policy.level(level)
            if (request.auto_only and not rules.auto_send) or (
                    request.review_only and rules.auto_send):
                continue
            if rules.document == "statement" and not request.invoice:
                continue  # this level sends statements (queue_statements)
            chosen.append((name, level, request.channel or ",".join(rules.channels)))
    return chosen


def _at(due: Any, chosen: list[tuple[str, int, str]]) -> ColumnElement[bool]:
    """Rows of :func:`due_letters` at one of the chosen (policy, level) pairs."""
    return or_(*(and_(due.c.policy == name, due.c.level == level) for name, level, _ in chosen))


async def queue_letters(session: AsyncSession, settings: Settings, request: Request,
                        as_of: dt.date, user: str) -> Queued:
    """Queue one letter per invoice due for a reminder at its current level."""
    chosen = _letter_rules(settings, request)
    if not chosen:
        return Queued()
    due = due_letters(settings, as_of=as_of, customer=request.customer,
                      invoice=request.invoice, again=request.force).subquery()
    wanted = _at(due, chosen)
    channels = case(*((and_(due.c.policy == name, due.c.level == level), literal(text))
                      for name, level, text in chosen))
    # The key of earlier releases, "letter:NUMBER:LEVEL:CHANNELS": a reminder
    # queued before an upgrade is not queued a second time after it.
    key = (literal("letter:") + due.c.number + literal(":") + cast(due.c.level, String)
           + literal(":") + channels)
    now = utcnow()
    rows = select(
        key, literal("letter"), due.c.customer_id, due.c.id, due.c.number, due.c.level,
        channels, literal(PENDING), literal(now, Reminder.next_attempt_at.type),
        literal(user), literal(request.as_of, Reminder.as_of.type),
        literal(now, Reminder.created_at.type),
    ).where(wanted)
    stmt = _once_per_key(upsert(session, Reminder).from_select(
        ["key", "kind", "customer_id", "invoice_id", "invoice_numbers", "level",
         "channels", "state", "next_attempt_at", "requested_by", "as_of", "created_at"],
        rows,
    ), request, user, now).returning(Reminder.id)
    ids = list((await session.execute(stmt)).scalars())
    # What was due but not queued now: already sent at this level, or queued before.
    every = due_letters(settings, as_of=as_of, customer=request.customer,
                        invoice=request.invoice, again=True).subquery()
    total = await session.scalar(select(func.count()).select_from(every)
                                 .where(_at(every, chosen)))
    return Queued(ids, (total or 0) - len(ids))


async def queue_statements(session: AsyncSession, settings: Settings, request: Request,
                           as_of: dt.date, user: str) -> Queued:
    """Queue one statement per customer with an invoice due for a reminder.

    The statement is written at the highest level among the customer's
    overdue invoices; it is queued when its level sends statements, or
    always with ``--statement``.
    """
    uses_statements = any(level.document == "statement" for policy in settings.policies.values()
                          for level in policy.levels.values())
    if not request.statement and not uses_statements:
        return Queued()
    conditions = [Invoice.level >= 1, remindable(as_of), *_filters(request)]
    if not request.force:
        conditions += [or_(Invoice.last_reminded_level.is_(None),
                           Invoice.last_reminded_level < Invoice.level),
                       *contact_waited(settings, as_of)]
    due_customers = select(Invoice.customer_id).where(*conditions).distinct()
    customers = (await session.execute(
        select(Customer).where(Customer.id.in_(due_customers)).order_by(Customer.code)
    )).scalars().all()
    queued = Queued()
    for customer in customers:
        covered = (await session.execute(
            select(Invoice.number, Invoice.level, Invoice.remaining)
            .where(Invoice.customer_id == customer.id, remindable(as_of), Invoice.level >= 1)
            .order_by(Invoice.due_date, Invoice.number))).all()
        level = max(lvl for _, lvl, _ in covered)
        policy = settings.policy(customer.policy)
        rules = policy.level(level)
        if policy.minimum_amount and sum(
                (r for *_, r in covered), Decimal(0)) < policy.minimum_amount:
            continue
        if not request.statement and rules.document != "statement":
            continue
        if (request.auto_only and not rules.auto_send) or (
                request.review_only and rules.auto_send):
            continue
        numbers = ",".join(n for n, *_ in covered)
        channels = request.channel or ",".join(rules.channels)
        digest = hashlib.sha256(numbers.encode()).hexdigest()[:12]
        key = f"statement:{customer.code}:{level}:{digest}:{channels}"
        now = utcnow()
        stmt = _once_per_key(upsert(session, Reminder).values(
            key=key, kind="statement", customer_id=customer.id, invoice_numbers=numbers,
            level=level, channels=channels, state=PENDING, next_attempt_at=now,
            requested_by=user, as_of=request.as_of, created_at=now,
        ), request, user, now).returning(Reminder.id)
        new_id = await session.scalar(stmt)
        if new_id is None:
            queued.already += 1
        else:
            queued.ids.append(new_id)
    return queued


async def queue(session: AsyncSession, settings: Settings, request: Request, *,
                user: str) -> Queued:
    """Queue every reminder the request makes due, in the caller's transaction."""
    as_of = request.as_of or settings.today()
    statements = await queue_statements(session, settings, request, as_of, user)
    if request.statement:
        return statements
    letters = await queue_letters(session, settings, request, as_of, user)
    return Queued(statements.ids + letters.ids, statements.already + letters.already)


@dataclass(frozen=True)
class Queueing:
    """One queued reminder as ``send --dry-run`` shows it."""

    customer_code: str
    kind: str
    invoice_numbers: str
    level: int
    channels: tuple[str, ...]


async def dry_run(session: AsyncSession, settings: Settings, request: Request, *,
                  user: str) -> tuple[list[Queueing], int]:
    """What :func:`queue` would queue, and how many are already queued or sent.

    Queues in the caller's session and rolls it back: nothing is written.
    """
    queued = await queue(session, settings, request, user=user)
    rows: list[Queueing] = []
    if queued.ids:
        result = await session.execute(
            select(Customer.code, Reminder.kind, Reminder.invoice_numbers, Reminder.level,
                   Reminder.channels).join(Customer, Customer.id == Reminder.customer_id)
            .where(Reminder.id.in_(queued.ids)).order_by(Reminder.id))
        rows = [Queueing(code, kind, numbers, level, tuple(channels.split(",")))
                for code, kind, numbers, level, channels in result]
    await session.rollback()
    return rows, queued.already


async def drop(session: AsyncSession, ids: Sequence[int], *, user: str) -> list[Reminder]:
    """Cancel queued reminders a person decided not to send; their key stays taken,
    so they are not proposed again at this level (``send --force`` still can)."""
    if not ids:
        return []
    dropped = list((await session.execute(
        update(Reminder).where(Reminder.id.in_(ids), Reminder.state == PENDING)
        .values(state=CANCELLED, last_error=f"écartée à la validation par {user}")
        .returning(Reminder))).scalars())
    return dropped


async def waiting_for(session: AsyncSession, request: Request, *,
                      make_due: bool = True) -> list[int]:
    """The request's reminders that wait for a retry (a transient failure
    left them pending, or their sender died), made due now with ``make_due``.

    What ``send`` sends again besides what it queues: without a daemon
    nothing else would.
    """
    now = utcnow()
    wanted = select(Reminder.id, Reminder.kind, Reminder.invoice_id, Reminder.invoice_numbers).where(
        or_(Reminder.state == PENDING, and_(Reminder.state == SENDING, Reminder.lease_until < now)))
    if request.statement:
        wanted = wanted.where(Reminder.kind == "statement")
    if request.channel:
        wanted = wanted.where(Reminder.channels == request.channel)
    if request.customer:
        wanted = wanted.where(Reminder.customer_id.in_(
            select(Customer.id).where(Customer.code == request.customer)))
    invoice_id = None
    if request.invoice:
        invoice_id = await session.scalar(select(Invoice.id)
                                          .where(Invoice.number == request.invoice))
        wanted = wanted.where(Reminder.customer_id.in_(
            select(Invoice.customer_id).where(Invoice.number == request.invoice)))
    ids = [reminder_id for reminder_id, kind, invoice, numbers
           in (await session.execute(wanted.order_by(Reminder.id))).all()
           if request.invoice is None or invoice == invoice_id
           or (kind == "statement" and request.invoice in numbers.split(","))]
    if ids and make_due:
        await session.execute(update(Reminder).where(Reminder.id.in_(ids),
                                                     Reminder.state == PENDING)
                              .values(next_attempt_at=now)
                              .execution_options(synchronize_session=False))
    return ids


async def pending_among(session: AsyncSession,
                        reminder_ids: Sequence[int]) -> tuple[int, dt.datetime | None]:
    """How many of ``reminder_ids`` wait for a retry, and when the first falls due."""
    count, first = (await session.execute(
        select(func.count(), func.min(Reminder.next_attempt_at))
        .where(Reminder.id.in_(list(reminder_ids)), Reminder.state == PENDING))).one()
    if first is not None and first.tzinfo is None:
        first = first.replace(tzinfo=dt.UTC)
    return int(count), first


def _due(now: dt.datetime) -> ColumnElement[bool]:
    return or_(and_(Reminder.state == PENDING, Reminder.next_attempt_at <= now),
               and_(Reminder.state == SENDING, Reminder.lease_until < now))


@dataclass(frozen=True)
class Claim:
    """What :func:`claim` took: the reminders, and the lease they share."""

    ids: list[int]
    until: dt.datetime


async def claim(session: AsyncSession, daemon: DaemonSettings, *, worker: str,
                limit: int, only: Sequence[int] | None = None,
                exclude: Collection[int] = ()) -> Claim:
    """Take up to ``limit`` due reminders for ``worker``, with a lease.

    Commits nothing: the caller commits at once, so other workers see the
    lease.  On PostgreSQL, rows another worker is claiming are skipped, not
    waited for.  ``exclude``: reminders the caller already holds.
    """
    now = utcnow()
    until = now + dt.timedelta(seconds=daemon.lease_seconds)
    candidates = select(Reminder.id).where(_due(now))
    if only is not None:
        candidates = candidates.where(Reminder.id.in_(list(only)))
    if exclude:
        candidates = candidates.where(Reminder.id.not_in(list(exclude)))
    candidates = (candidates.order_by(Reminder.next_attempt_at, Reminder.id).limit(limit)
                  .with_for_update(skip_locked=True))
    stmt = (update(Reminder).where(Reminder.id.in_(candidates.scalar_subquery()))
            .values(state=SENDING, claimed_by=worker, lease_until=until,
                    attempts=Reminder.attempts + 1)
            .returning(Reminder.id)
            .execution_options(synchronize_session=False))
    return Claim(sorted((await session.execute(stmt)).scalars()), until)


def retry_delay(daemon: DaemonSettings, attempts: int) -> float:
    """Exponential backoff with jitter: base × 2^(n-1), ±25 %, capped."""
    delay = min(daemon.retry_base_seconds * 2 ** max(attempts - 1, 0), daemon.retry_max_seconds)
    return delay * random.uniform(0.75, 1.25)


async def next_due_at(session: AsyncSession) -> dt.datetime | None:
    """When the next pending reminder (or an expired lease, or a channel's
    confirmation to ask for) falls due."""
    pending = await session.scalar(
        select(func.min(Reminder.next_attempt_at))
        .where(Reminder.state.in_((PENDING, AWAITING))))
    leased = await session.scalar(
        select(func.min(Reminder.lease_until)).where(Reminder.state == SENDING))
    times = [t if t.tzinfo else t.replace(tzinfo=dt.UTC) for t in (pending, leased) if t]
    return min(times) if times else None
