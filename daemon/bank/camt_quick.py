"""The quick path of the camt.053 reader: a plain entry read with one XPath.

Most entries of a statement are plain: booked, one amount, a booking date,
at most one transaction with one remittance line and one reference.  For
those, one compiled XPath returns every value the careful reader
(:mod:`relances.daemon.bank.camt`) would look up one ``find`` at a time
(a dozen namespaced look-ups of ~10 µs each), joined by a separator, and
:func:`quick_entry` builds the same :class:`Entry` from them.  Whatever is
not plain — a batch, a second remittance line, a date and time instead of a
date, an amount or date that does not parse, an IBAN that fails its check,
an element inside an amount, a value holding the separator — returns None,
and the careful reader reads that entry, with its messages and warnings.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from decimal import Decimal
from typing import Any

from lxml import etree
from stdnum import numdb

from relances.daemon.bank.statements import Entry, given_identity
from relances.daemon.ledger.references import mod_97_10_holds

_AMOUNT = re.compile(r"\d{1,18}(?:\.\d{1,5})?")
_CURRENCY = re.compile(r"[A-Z]{3}")
_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})(?:Z|[+-]\d{2}:\d{2})?")
MAX_TEXT = 1000
MAX_FIELD = 140
_SEP = "\ue000"  # a private-use character; a value holding it takes the careful path
_TX = "c:NtryDtls/c:TxDtls/"
_PATHS = (
    "c:Sts/c:Cd", "c:Sts", "c:Amt", "c:Amt/@Ccy", "c:CdtDbtInd",
    "count(c:BookgDt)", "c:BookgDt/c:Dt", "count(c:BookgDt/c:DtTm)",
    "count(c:ValDt)", "c:ValDt/c:Dt", "count(c:ValDt/c:DtTm)",
    "count(c:Amt/*) + count(c:BookgDt/c:Dt/*) + count(c:ValDt/c:Dt/*)",
    "c:AcctSvcrRef", "c:AddtlNtryInf", "count(c:NtryDtls/c:TxDtls)",
    f"{_TX}c:RltdPties/c:Dbtr/c:Nm", f"{_TX}c:RltdPties/c:Dbtr/c:Pty/c:Nm",
    f"{_TX}c:RltdPties/c:Cdtr/c:Nm", f"{_TX}c:RltdPties/c:Cdtr/c:Pty/c:Nm",
    f"count({_TX}c:RmtInf/c:Ustrd)", f"{_TX}c:RmtInf/c:Ustrd",
    f"count({_TX}c:RmtInf/c:Strd/c:CdtrRefInf/c:Ref)", f"{_TX}c:RmtInf/c:Strd/c:CdtrRefInf/c:Ref",
    f"{_TX}c:AddtlTxInf", f"{_TX}c:Refs/c:EndToEndId", f"{_TX}c:Refs/c:AcctSvcrRef",
    f"{_TX}c:RltdPties/c:DbtrAcct/c:Id/c:IBAN", f"{_TX}c:RltdPties/c:CdtrAcct/c:Id/c:IBAN",
)


@functools.lru_cache(maxsize=16)
def quick_fields(namespace: str) -> Any:
    """The compiled XPath giving a ``Ntry``'s values as one string, for the file's namespace."""
    joined = f", '{_SEP}', ".join(f"string({path})" if not path.startswith("count(") else path
                                  for path in _PATHS)
    return etree.XPath(f"concat({joined})", namespaces={"c": namespace})


_IBAN_SHAPE = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{1,30}")
_LAYOUT_PART = re.compile(r"([1-9][0-9]*)!([nac])")
_LAYOUT_CLASS = {"n": "[0-9]", "a": "[A-Z]", "c": "[A-Za-z0-9]"}


@functools.lru_cache(maxsize=128)
def _bban_layout(country: str) -> re.Pattern[str] | None:
    """The layout of a country's account numbers, from python-stdnum's IBAN registry
    (``FR``: ``5!n5!n11!c2!n``), or None for a country that has no IBAN."""
    layout = numdb.get("iban").info(country)[0][1].get("bban")
    if not layout:
        return None
    return re.compile(_LAYOUT_PART.sub(
        lambda m: f"{_LAYOUT_CLASS[m.group(2)]}{{{m.group(1)}}}", layout))


@functools.lru_cache(maxsize=4096)  # a payer's IBAN comes back entry after entry
def _iban(text: str) -> str | None:
    """The IBAN, compact, if its layout and check digits are right.

    What ``stdnum.iban.validate(text, check_country=False)`` accepts (the
    country's layout, ISO 7064 mod 97-10), looked up once per country
    instead of once per IBAN: that look-up was most of its cost.
    """
    number = "".join(text.replace("-", " ").replace(".", " ").split()).upper()
    if not _IBAN_SHAPE.fullmatch(number):
        return None
    layout = _bban_layout(number[:2])
    if layout is None or not layout.fullmatch(number[4:]):
        return None
    return number if mod_97_10_holds(number[4:] + number[:4]) else None


def _day(text: str) -> dt.date | None:
    match = _DATE.fullmatch(text)
    try:
        return dt.date.fromisoformat(match.group(1)) if match else None
    except ValueError:
        return None


def _clean(text: str, limit: int) -> str:
    return " ".join(text.split())[:limit] if text else text


def quick_entry(values: str, *, account: str, position: int, where: str) -> list[Entry] | None:
    """The entries of a plain ``Ntry`` from :func:`quick_fields`' string (none when it is
    not booked), or None when the careful reader must read it."""
    fields = values.split(_SEP)
    if len(fields) != len(_PATHS):
        return None
    (sts_cd, sts, amount, currency, indicator, bookings, booked, booked_times, values_n, value,
     value_times, inside, bank_ref, info, transactions, dbtr_nm, dbtr_pty_nm, cdtr_nm, cdtr_pty_nm,
     ustrds, ustrd, refs, ref, addtl, e2e, tx_ref, dbtr_iban, cdtr_iban) = fields
    status = _clean(sts_cd, MAX_FIELD) or _clean(sts, MAX_FIELD)
    if status and status != "BOOK":
        return None  # the careful reader says it is left out
    amount, currency, indicator = amount.strip(), currency.strip(), _clean(indicator, MAX_FIELD)
    if not (_AMOUNT.fullmatch(amount) and _CURRENCY.fullmatch(currency)
            and indicator in ("CRDT", "DBIT") and float(inside) == 0
            and bookings == "1" and booked_times == "0" and transactions in ("0", "1")):
        return None
    booked_on = _day(booked.strip())
    value_date = _day(value.strip()) if values_n == "1" and value_times == "0" else None
    if booked_on is None or (values_n != "0" and value_date is None):
        return None
    signed = Decimal(amount) if indicator == "CRDT" else -Decimal(amount)
    bank_reference = _clean(bank_ref, MAX_FIELD)
    identity = given_identity(account, bank_reference) or ""
    info = _clean(info, MAX_TEXT)
    if transactions == "0":
        return [Entry(identity=identity, booked_on=booked_on, amount=signed, position=position,
                      where=where, value_date=value_date, currency=currency, text=info,
                      bank_reference=bank_reference or None)]
    if ustrds not in ("0", "1") or refs not in ("0", "1"):
        return None
    credit = signed >= 0
    given_iban = _clean(dbtr_iban if credit else cdtr_iban, MAX_FIELD)
    iban = _iban(given_iban) if given_iban else None
    if given_iban and iban is None:
        return None  # the careful reader warns that it is left out
    party = (_clean(dbtr_nm, MAX_FIELD) or _clean(dbtr_pty_nm, MAX_FIELD)) if credit \
        else (_clean(cdtr_nm, MAX_FIELD) or _clean(cdtr_pty_nm, MAX_FIELD))
    reference = _clean(ref, MAX_FIELD) or None
    text = _clean(ustrd, MAX_TEXT) or _clean(addtl, MAX_TEXT) or info
    end_to_end = _clean(e2e, MAX_FIELD)
    end_to_end = end_to_end if given_identity(None, end_to_end) else ""
    tx_reference = _clean(tx_ref, MAX_FIELD)
    if not identity:
        by_e2e = given_identity(account, f"e2e:{end_to_end}:{booked_on.isoformat()}:{signed}")
        identity = given_identity(account, tx_reference) or (by_e2e if end_to_end else "") or ""
    return [Entry(identity=identity, booked_on=booked_on, amount=signed, position=position,
                  where=where, value_date=value_date, currency=currency, counterparty=party,
                  counterparty_iban=iban, reference=reference, text=_clean(text, MAX_TEXT),
                  end_to_end_id=end_to_end or None,
                  bank_reference=bank_reference or tx_reference or None)]
