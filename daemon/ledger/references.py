"""Payment references: the ISO 11649 creditor reference a transfer quotes.

Every letter and statement asks the payer to quote an RF reference
(``RF`` + two check digits + up to 21 letters and digits, checked by
ISO 7064 Mod 97-10), so that the bank line names what it pays without a
human reading it.  One reference names one thing, in one of three forms
of its body (what follows the check digits):

* an invoice by its **number**, upper-cased, when the number is 1 to 21
  letters and digits and does not look like the two other forms:
  ``F2024001`` → ``RF..F2024001``;
* an invoice by its **id** otherwise (``COD_F1026``, ``2024/001``, a number
  too long): ``X`` + the id, ``X7``;
* a **statement** sent to a customer on a day: ``S`` + the customer's id +
  ``D`` + ``YYMMDD``, ``S12D241122``.

A body that looks like an id (``X`` and digits) or a statement (``S``,
digits, ``D``, six digits) is never a number, so :func:`decode_reference`
needs nothing but the reference to tell the forms apart.

RF references are case-insensitive, invoice numbers are not: two numbers
differing only by case (``f1`` and ``F1``) get the same reference.  The
books almost never do this; when they do, the bank matcher finds two
invoices for one ``("number", "F1")`` and must treat the payment as
ambiguous (look numbers up case-insensitively, and let the amount or a
person decide).

:func:`epc_qr_payload` is the text of the European Payments Council's QR
code for a SEPA credit transfer (EPC069-12, version 002) that pre-fills
the payer's banking app with the IBAN, the amount and the reference.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from stdnum import iso11649
from stdnum.exceptions import ValidationError
from stdnum.iso7064 import mod_97_10

__all__ = ["decode_reference", "epc_qr_payload", "find_references", "format_reference",
           "invoice_reference", "statement_reference"]

MAX_BODY = 21
EPC_NAME_MAX = 70
EPC_AMOUNT_MAX = Decimal("999999999.99")
_CENT = Decimal("0.01")

_NUMBER = re.compile(r"[A-Z0-9]{1,21}")
_CLEAN_NUMBER = re.compile(r"[A-Za-z0-9]{1,21}")  # checked before upper(): "ß" becomes "SS"
_ID = re.compile(r"X([0-9]+)")
_STATEMENT = re.compile(r"S([0-9]+)D([0-9]{6})")
_SPACES = re.compile(r"[\s\u00a0\u202f]+")
_WORD = re.compile(r"[A-Za-z0-9]+")
_OPENING = re.compile(r"[Rr][Ff][0-9]{2}")
_GAP = re.compile(r"[ \t\u00a0\u202f]+")
_CREDITOR_REFERENCE = re.compile(r"RF[0-9]{2}[A-Z0-9]{1,21}")
_AS_DIGITS = {ord(c): str(ord(c) - 55) for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"}


def _reference(body: str) -> str:
    """``RF`` + check digits + ``body`` (1 to 21 upper-case letters and digits)."""
    if not _NUMBER.fullmatch(body):
        raise ValueError(f"not a creditor reference body: {body!r}")
    return f"RF{mod_97_10.calc_check_digits(body + 'RF')}{body}"


def _canonical_id(value: int, what: str, digits: int) -> str:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} must be a non-negative integer, not {value!r}")
    text = str(value)
    if len(text) > digits:
        raise ValueError(f"{what} {value} is too long for a creditor reference")
    return text


def _is_other_form(body: str) -> bool:
    return bool(_ID.fullmatch(body) or _STATEMENT.fullmatch(body))


def invoice_reference(number: str, invoice_id: int) -> str:
    """The RF reference of one invoice: from its number when clean, else from its id."""
    if _CLEAN_NUMBER.fullmatch(number) and not _is_other_form(body := number.upper()):
        return _reference(body)
    return _reference("X" + _canonical_id(invoice_id, "invoice id", MAX_BODY - 1))


def statement_reference(customer_id: int, on: dt.date) -> str:
    """The RF reference of the statement sent to a customer on a day."""
    customer = _canonical_id(customer_id, "customer id", MAX_BODY - 8)
    return _reference(f"S{customer}D{on:%y%m%d}")


def format_reference(reference: str) -> str:
    """The print form, grouped by four: ``RF18 5390 0754 7034``."""
    return str(iso11649.format(reference))


@functools.lru_cache(maxsize=65536)  # an entry's references are looked at by several rules
def decode_reference(reference: str) -> tuple[str, object] | None:
    """What a reference names: ``("number", "F2024001")``, ``("id", 7)``,
    ``("statement", (customer_id, date))``; None when its check digits are
    wrong or its body fits no form (a statement of a day that does not exist,
    an id written with a leading zero)."""
    compact = checked_reference(reference)
    if compact is None:
        return None
    body = compact[4:]
    if match := _ID.fullmatch(body):
        digits = match.group(1)
        return ("id", int(digits)) if str(int(digits)) == digits else None
    if match := _STATEMENT.fullmatch(body):
        digits, day = match.groups()
        if str(int(digits)) != digits:
            return None
        try:
            on = dt.datetime.strptime(day, "%y%m%d").date()
        except ValueError:
            return None
        return "statement", (int(digits), on)
    if _NUMBER.fullmatch(body):
        return "number", body
    return None


def checked_reference(reference: str) -> str | None:
    """The reference, compact and upper-case, when its check digits hold.

    What ``stdnum.iso11649.validate`` accepts (ISO 7064 Mod 97-10 over the
    body then ``RF`` and the check digits), in a few microseconds instead of
    some thirty: a statement's every entry goes through here.  Only ASCII:
    ``"ı".upper()`` is ``"I"``, and no bank writes a dotless i in a reference.
    """
    compact = "".join(reference.split())
    if not compact.isascii():
        return None
    compact = compact.upper()
    if not _CREDITOR_REFERENCE.fullmatch(compact):
        return None
    return compact if mod_97_10_holds(compact[4:] + compact[:4]) else None


def mod_97_10_holds(number: str) -> bool:
    """ISO 7064 Mod 97-10 over upper-case letters and digits (A = 10 … Z = 35), as
    creditor references and IBANs check it."""
    return int(number.translate(_AS_DIGITS)) % 97 == 1


def find_references(text: str) -> list[str]:
    """Every valid RF reference in a bank line (see :func:`_references`)."""
    return list(_references(text))


@functools.lru_cache(maxsize=65536)  # an entry's text is searched by several rules
def _references(text: str) -> tuple[str, ...]:
    """Every valid RF reference in a bank line, compact and upper-case, in order, once each.

    References are found with or without spaces inside (``RF18 5390 0754 7034``,
    ``RF18539007547034``).  A space is read as inside a reference only after a group
    of exactly four characters, as in the print form; of the readings that end at a
    word's end, the longest whose check digits hold wins.  A word that looks like a
    reference but whose check digits are wrong is not returned.
    """
    words = list(_WORD.finditer(text))
    found: list[str] = []
    i = 0
    while i < len(words):
        if not _OPENING.match(words[i].group()):
            i += 1
            continue
        readings = [words[i].group()]
        j = i + 1
        while (j < len(words) and len(words[j - 1].group()) == 4
               and _GAP.fullmatch(text, words[j - 1].end(), words[j].start())
               and len(readings[-1]) + len(words[j].group()) <= 4 + MAX_BODY):
            readings.append(readings[-1] + words[j].group())
            j += 1
        for taken, reading in reversed(list(enumerate(readings, start=1))):
            valid = checked_reference(reading)
            if valid:
                if valid not in found:
                    found.append(valid)
                i += taken
                break
        else:
            i += 1
    return tuple(found)


def _amount(amount: Decimal) -> str:
    try:
        cents = Decimal(amount).quantize(_CENT, rounding=ROUND_HALF_UP)
    except (InvalidOperation, TypeError, ValueError):
        raise ValueError(f"not an amount: {amount!r}") from None
    if not cents.is_finite() or cents <= 0 or cents > EPC_AMOUNT_MAX:
        raise ValueError(f"an EPC QR code asks for 0.01 to {EPC_AMOUNT_MAX} EUR, not {amount}")
    return f"{cents:.2f}"


def epc_qr_payload(*, bic: str, name: str, iban: str, amount: Decimal, reference: str) -> str:
    """The text of an EPC QR code (EPC069-12, version 002) for a SEPA credit transfer.

    Lines: ``BCD``, ``002``, ``1`` (UTF-8), ``SCT``, the BIC, the beneficiary's name
    (cut at 70 characters), the IBAN, ``EUR`` and the amount (a dot, two decimals),
    the purpose (empty), the structured reference, the unstructured text (empty).
    Raises :class:`ValueError` for an amount not above 0 or above 999 999 999.99,
    an empty name or IBAN, or a reference whose check digits are wrong.
    """
    beneficiary = " ".join(name.split())[:EPC_NAME_MAX]
    account = _SPACES.sub("", iban).upper()
    if not beneficiary:
        raise ValueError("an EPC QR code needs the beneficiary's name")
    if not account:
        raise ValueError("an EPC QR code needs an IBAN")
    try:
        structured = iso11649.validate(reference)
    except ValidationError as exc:
        raise ValueError(f"not a valid creditor reference: {reference!r} ({exc})") from None
    lines = ["BCD", "002", "1", "SCT", _SPACES.sub("", bic).upper(), beneficiary, account,
             "EUR" + _amount(amount), "", structured, ""]
    return "\n".join(lines)
