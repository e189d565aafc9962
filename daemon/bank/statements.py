"""A bank statement as every reader hands it over: entries with a stable identity.

Each format's reader (``camt``, ``cfonb``, ``ofx``, ``mt940``) turns a file
into a :class:`Statement` of :class:`Entry` values; nothing else of the
bank stage knows the formats.  Amounts are signed: a credit (money in) is
positive, a debit negative.  An entry's ``identity`` is what the bank gives
to tell it apart (its reference, the end-to-end id, the FITID), else a hash
of the account, the date, the amount, the text and the entry's position in
its statement among the entries alike, so that two equal transfers on one
day stay two, while the same entry read again (the same statement twice,
or two statements that overlap) gets the same identity.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field, replace
from decimal import Decimal

MAX_STATEMENT_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True)
class Entry:
    """One line of a statement."""

    identity: str
    booked_on: dt.date
    amount: Decimal  # > 0: a credit, money in; < 0: a debit
    position: int  # 1-based, in its statement
    where: str  # "file:line" or "file: entry 12", for messages
    value_date: dt.date | None = None
    currency: str = "EUR"
    counterparty: str = ""  # the debtor's name, for a credit
    counterparty_iban: str | None = None
    reference: str | None = None  # a structured reference (RF…, or the creditor's own)
    text: str = ""  # the free remittance text, as the bank passes it
    end_to_end_id: str | None = None
    bank_reference: str | None = None

    @property
    def is_credit(self) -> bool:
        return self.amount > 0


@dataclass(frozen=True)
class Statement:
    source: str  # the file's name
    format: str  # "camt.053.001.02", "camt.053.001.08", "cfonb120", "ofx", "mt940"
    account_iban: str | None
    statement_id: str | None
    date: dt.date | None  # the statement's date (its closing balance's, or its last entry's)
    entries: list[Entry] = field(default_factory=list)


def given_identity(account: str | None, given: str | None) -> str | None:
    """The bank's own identity for an entry, when it gives a real one."""
    if given and given.strip() and given.strip().upper() not in {"NONREF", "NOTPROVIDED", "NONE"}:
        return f"{account or ''}:{given.strip()}"[:200]
    return None


def with_identities(account: str | None, entries: list[Entry]) -> list[Entry]:
    """Entries whose ``identity`` is empty get one: a hash of the account, the date,
    the amount, the text and how many alike came before it in this statement."""
    alike: dict[tuple[str, str, str], int] = {}
    done = []
    for entry in entries:
        if entry.identity:
            done.append(entry)
            continue
        text = " ".join(entry.text.split())
        key = (entry.booked_on.isoformat(), f"{entry.amount:.2f}", text)
        alike[key] = alike.get(key, 0) + 1
        raw = "|".join((account or "", *key, str(alike[key])))
        done.append(replace(entry, identity="h:" + hashlib.sha256(raw.encode()).hexdigest()[:40]))
    return done
