"""Every table of Relances, in one place.

Money is stored as integer cents and read as :class:`~decimal.Decimal`; dates are
dates; timestamps are stored in UTC.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Money(TypeDecorator[Decimal]):
    """An amount in euros, stored as an integer number of cents.

    Exact on SQLite (whose NUMERIC is a float underneath) and PostgreSQL
    alike, and cheap to compare in the set-based escalation statement.
    """

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Decimal | int | str | None, dialect: Any) -> int | None:
        if value is None:
            return None
        cents = (Decimal(value) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        return int(cents)

    def process_result_value(self, value: int | None, dialect: Any) -> Decimal | None:
        if value is None:
            return None
        return (Decimal(value) / 100).quantize(CENT)


# Stable constraint names, so Alembic can alter them on SQLite and PostgreSQL alike.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL wants BIGINT.
Id = BigInteger().with_variant(Integer(), "sqlite")


CENT = Decimal("0.01")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


# What a customer is, for the law: late-payment penalties and the 40 € indemnity
# (Code de commerce L441-10, D441-5) are for businesses and public buyers only.
CUSTOMER_KINDS = ("business", "public", "consumer", "unknown")
CHARGEABLE_KINDS = frozenset({"business", "public"})


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (
        CheckConstraint("kind IN ('business', 'public', 'consumer', 'unknown')",
                        name="kind_known"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    affiliate_code: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    # A permanent bounce of the address above: email cannot reach the customer
    # until the address changes (an import or a person writes another one).
    email_bounced_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    email_bounce: Mapped[str | None] = mapped_column(String(300))
    fax: Mapped[str | None] = mapped_column(String(40))
    phone: Mapped[str | None] = mapped_column(String(40))
    address_line1: Mapped[str | None] = mapped_column(String(200))
    address_line2: Mapped[str | None] = mapped_column(String(200))
    postal_code: Mapped[str | None] = mapped_column(String(20))
    city: Mapped[str | None] = mapped_column(String(100))
    country: Mapped[str | None] = mapped_column(String(100))
    language: Mapped[str] = mapped_column(String(8), default="fr", server_default="fr")
    # business | public | consumer | unknown (nobody said: no charges are claimed)
    kind: Mapped[str] = mapped_column(String(16), default="unknown", server_default="unknown")
    siren: Mapped[str | None] = mapped_column(String(9))
    vat_number: Mapped[str | None] = mapped_column(String(20))
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    policy: Mapped[str | None] = mapped_column(String(64))
    # What the customer paid beyond their invoices (an overpayment confirmed by hand).
    credit: Mapped[Decimal] = mapped_column(Money(), default=Decimal(0), server_default="0")
    # A bank payment that may be theirs waits for a person: no new reminder until then.
    review_until: Mapped[dt.date | None] = mapped_column(Date)
    # The customer replied to a reminder: no new reminder until then (or a person resumes).
    paused_until: Mapped[dt.date | None] = mapped_column(Date)
    # The customer promised to pay on promised_on: no new reminder until promise_until
    # (that day and a grace period); then, still unpaid, the promise was not kept.
    promised_on: Mapped[dt.date | None] = mapped_column(Date)
    promise_until: Mapped[dt.date | None] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

    invoices: Mapped[list[Invoice]] = relationship(back_populates="customer")

    @property
    def is_consumer(self) -> bool:
        return self.kind == "consumer"

    @property
    def owes_late_charges(self) -> bool:
        """Penalties and the recovery indemnity may be claimed (a business, a public buyer)."""
        return self.kind in CHARGEABLE_KINDS

    @property
    def address(self) -> tuple[str, ...]:
        city = " ".join(p for p in (self.postal_code, self.city) if p)
        lines = (self.address_line1, self.address_line2, city, self.country)
        return tuple(line for line in lines if line)


class Invoice(Base):
    __tablename__ = "invoices"
    __table_args__ = (
        CheckConstraint("level BETWEEN 0 AND 3", name="level_range"),
        CheckConstraint(
            "last_reminded_level IS NULL OR last_reminded_level BETWEEN 0 AND 3",
            name="last_level_range",
        ),
        # The reminders table: open invoices by due date, and per customer.
        Index("ix_invoices_open_due", "due_date", sqlite_where=text("remaining > 0"),
              postgresql_where=text("remaining > 0")),
        Index("ix_invoices_customer_due", "customer_id", "due_date"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    number: Mapped[str] = mapped_column(String(64), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="RESTRICT"))
    invoice_date: Mapped[dt.date] = mapped_column(Date)
    due_date: Mapped[dt.date] = mapped_column(Date)
    total: Mapped[Decimal] = mapped_column(Money())
    remaining: Mapped[Decimal] = mapped_column(Money())
    payment_method: Mapped[str | None] = mapped_column(String(64))
    settlement: Mapped[str | None] = mapped_column(String(64))
    assignment: Mapped[str | None] = mapped_column(String(64))
    representative: Mapped[str | None] = mapped_column(String(64))
    level: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_reminded_on: Mapped[dt.date | None] = mapped_column(Date)
    last_reminded_level: Mapped[int | None] = mapped_column(Integer)
    on_hold: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    hold_reason: Mapped[str | None] = mapped_column(String(200))
    hold_until: Mapped[dt.date | None] = mapped_column(Date)
    pdf_path: Mapped[str | None] = mapped_column(String(500))
    # What the books call an item that is not one invoice ("Solde à nouveau").
    label: Mapped[str | None] = mapped_column(String(100))
    # Relances itself sent a reminder for it: an export's level and "Relancé
    # le" no longer apply, Relances' own record does.
    reminded_here: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The escalation runs that raised the invoice to levels 1, 2 and 3: the
    # invoice's escalation history, at no cost beyond the UPDATE that raises
    # it (runs hold the time and the user; they are never deleted).
    level1_run_id: Mapped[int | None] = mapped_column(Id)
    level2_run_id: Mapped[int | None] = mapped_column(Id)
    level3_run_id: Mapped[int | None] = mapped_column(Id)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

    customer: Mapped[Customer] = relationship(back_populates="invoices")


class Payment(Base):
    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"),
                                            index=True)
    paid_on: Mapped[dt.date] = mapped_column(Date)
    amount: Mapped[Decimal] = mapped_column(Money())
    method: Mapped[str | None] = mapped_column(String(64))
    reference: Mapped[str] = mapped_column(String(100), default="", server_default="")
    # The seller's books show it: an export's Reste already counts it.
    reflected: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The bank entry that shows it (read from a statement, or linked to it later).
    bank_entry_id: Mapped[int | None] = mapped_column(
        ForeignKey("bank_entries.id", ondelete="SET NULL"), index=True)
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    recorded_by: Mapped[str] = mapped_column(String(100))


class HistoryEntry(Base):
    """One step in the life of an invoice or a customer's reminders."""

    __tablename__ = "history"
    __table_args__ = (
        Index("ix_history_invoice_at", "invoice_id", "at"),
        Index("ix_history_customer_at", "customer_id", "at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    user: Mapped[str] = mapped_column(String(100))
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"))
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE")
    )
    # escalated | sent | failed | reprinted | imported | paid | hold | released | note
    event: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(300))
    level: Mapped[int | None] = mapped_column(Integer)
    channel: Mapped[str | None] = mapped_column(String(64))
    reference: Mapped[str | None] = mapped_column(String(300))


class Note(Base):
    """A call or an exchange recorded against a customer (the "centre d'actions")."""

    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"),
                                             index=True)
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id", ondelete="SET NULL"))
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    user: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(32), default="note", server_default="note")
    text: Mapped[str] = mapped_column(Text)


class Document(Base):
    """A rendered PDF exactly as it left: the proof of sending."""

    __tablename__ = "documents"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Reminder(Base):
    """The outbox: one reminder to send, through one channel.

    ``key`` is unique per invoice (or statement), level and channel, so a
    reminder is queued once whatever runs decide it is due.
    """

    __tablename__ = "reminders"
    __table_args__ = (
        CheckConstraint(
            "state IN ('pending', 'sending', 'awaiting', 'sent', 'failed', 'cancelled')",
            name="state_known",
        ),
        Index("ix_reminders_due", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # letter | statement
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"),
                                             index=True)
    invoice_id: Mapped[int | None] = mapped_column(
        ForeignKey("invoices.id", ondelete="CASCADE"), index=True
    )
    # Invoice numbers a statement covers, comma-separated, fixed when queued.
    invoice_numbers: Mapped[str] = mapped_column(Text, default="", server_default="")
    level: Mapped[int] = mapped_column(Integer)
    channels: Mapped[str] = mapped_column(String(300))  # the level's channels, in order
    channel_index: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    state: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    lease_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    last_error: Mapped[str | None] = mapped_column(Text)
    requested_by: Mapped[str] = mapped_column(String(100))
    # The business date the reminder was asked for (`send --as-of`); the
    # letter is dated and "Relancé le" stamped with it.  NULL: the day it leaves.
    as_of: Mapped[dt.date | None] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # When the channel took it without confirming yet (state awaiting): the
    # wait for its confirmation is counted from here.
    handed_over_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    sent_channel: Mapped[str | None] = mapped_column(String(64))
    reference: Mapped[str | None] = mapped_column(String(300))
    document_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id"))
    # What the stamp replaced on each invoice, to put back if the email bounces:
    # "invoice_id,reminded_on,level,here,stamped_on,stamped_level;..." (empty: none).
    stamp_undo: Mapped[str | None] = mapped_column(Text)

    document: Mapped[Document | None] = relationship()


class InboundMessage(Base):
    """One message read from a mailbox (``mailboxes:``), classified once.

    ``source`` names it in its mailbox (IMAP: ``UIDVALIDITY/UID``; Maildir:
    the file's key), so a message read twice is recorded once; ``kind`` is
    bounce, delayed, auto-reply, reply or other.
    """

    __tablename__ = "inbound_messages"
    __table_args__ = (UniqueConstraint("mailbox", "source", name="uq_inbound_messages_source"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(300))
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    uid: Mapped[int | None] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))
    reminder_id: Mapped[int | None] = mapped_column(
        ForeignKey("reminders.id", ondelete="SET NULL"), index=True)
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL"), index=True)
    received_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    summary: Mapped[str] = mapped_column(Text, default="", server_default="")
    # A bounce's addresses refused for good, comma-separated: with the reminder's other
    # bounces, whether every address of the customer was refused.
    refused: Mapped[str] = mapped_column(Text, default="", server_default="")


class RunRecord(Base):
    """One escalation or dispatch run: when, by whom, with what result."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    job: Mapped[str] = mapped_column(String(32))
    user: Mapped[str] = mapped_column(String(100), default="", server_default="")
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    host: Mapped[str] = mapped_column(String(200), default="", server_default="")
    summary: Mapped[str] = mapped_column(Text, default="", server_default="")
    ok: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())



class BankStatement(Base):
    """One statement file read: where it came from and what it held."""

    __tablename__ = "bank_statements"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    source: Mapped[str] = mapped_column(String(300))
    format: Mapped[str] = mapped_column(String(32))
    account_iban: Mapped[str | None] = mapped_column(String(34))
    statement_ref: Mapped[str | None] = mapped_column(String(100))
    date: Mapped[dt.date | None] = mapped_column(Date)
    entries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    read_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    read_by: Mapped[str] = mapped_column(String(100))


class BankEntry(Base):
    """One line of a statement, read once: its identity is unique.

    ``state``: matched (payments recorded), known (it shows a payment already
    recorded by hand), review (waits for a person), ignored (a person said
    so), debit (money out: not a payment of a customer).
    """

    __tablename__ = "bank_entries"
    __table_args__ = (
        CheckConstraint("state IN ('matched', 'known', 'review', 'ignored', 'debit')",
                        name="state_known"),
        Index("ix_bank_entries_state", "state"),
        Index("ix_bank_entries_statement_id", "statement_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    identity: Mapped[str] = mapped_column(String(200), unique=True)
    statement_id: Mapped[int] = mapped_column(ForeignKey("bank_statements.id", ondelete="CASCADE"))
    booked_on: Mapped[dt.date] = mapped_column(Date)
    value_date: Mapped[dt.date | None] = mapped_column(Date)
    amount: Mapped[Decimal] = mapped_column(Money())  # signed: > 0 is money in
    currency: Mapped[str] = mapped_column(String(3), default="EUR", server_default="EUR")
    counterparty: Mapped[str] = mapped_column(String(200), default="", server_default="")
    counterparty_iban: Mapped[str | None] = mapped_column(String(34))
    reference: Mapped[str | None] = mapped_column(String(140))
    text: Mapped[str] = mapped_column(Text, default="", server_default="")
    bank_reference: Mapped[str | None] = mapped_column(String(140))
    state: Mapped[str] = mapped_column(String(16))
    rule: Mapped[str | None] = mapped_column(String(32))  # how it was matched
    note: Mapped[str | None] = mapped_column(Text)  # why it waits, or why it was ignored
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    # Customers it may belong to, while it waits (comma-separated ids): held from reminders.
    candidates: Mapped[str] = mapped_column(Text, default="", server_default="")
    resolved_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_by: Mapped[str | None] = mapped_column(String(100))


class CustomerIban(Base):
    """An account a customer pays from: from a customers file, or a match confirmed by hand."""

    __tablename__ = "customer_ibans"
    __table_args__ = (UniqueConstraint("customer_id", "iban", name="uq_customer_ibans_pair"),
                      Index("ix_customer_ibans_iban", "iban"))

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    iban: Mapped[str] = mapped_column(String(34))
    source: Mapped[str] = mapped_column(String(16))  # import | match
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class InvoiceStatus(Base):
    """A life-cycle status an e-invoicing platform reported for an invoice (a CDAR
    message), read once: ``identity`` is the message's id, the invoice and the code."""

    __tablename__ = "invoice_statuses"
    __table_args__ = (Index("ix_invoice_statuses_invoice_id", "invoice_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    identity: Mapped[str] = mapped_column(String(300), unique=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str | None] = mapped_column(String(300))
    amount: Mapped[Decimal | None] = mapped_column(Money())  # what 212 says was cashed
    issued_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    source: Mapped[str] = mapped_column(String(300))
    read_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    read_by: Mapped[str] = mapped_column(String(100))


# The web screen's roles, each allowing what the ones before it allow.
ROLES = ("lecture", "gestion", "envoi", "admin")


class User(Base):
    """A person who logs in to the web screen; the password is kept as an argon2 hash."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint(f"role IN {ROLES}", name="role_known"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class ApiToken(Base):
    """A program's key to the JSON API: only the token's SHA-256 is kept; revoked, never deleted."""

    __tablename__ = "api_tokens"
    __table_args__ = (CheckConstraint(f"role IN {ROLES}", name="role_known"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class LetterOption(Base):
    """A level's letter as a person set it on the screen (Courriers), over the settings:
    whether it joins the copy of the invoice, for one policy."""

    __tablename__ = "letter_options"
    __table_args__ = (UniqueConstraint("policy", "level", name="uq_letter_options_level"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    policy: Mapped[str] = mapped_column(String(64))
    level: Mapped[int] = mapped_column(Integer)
    attach_invoice: Mapped[bool] = mapped_column(Boolean)
    updated_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
