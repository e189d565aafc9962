"""Who a customer is, as import files say it: a kind, a SIREN or SIRET, a VAT number.

A customer's kind decides what the law lets a letter claim: penalties and
the recovery indemnity are for businesses and public buyers
(``CHARGEABLE_KINDS``), never for consumers, and not for a customer
nobody described (``unknown``).  A valid SIREN, SIRET or intra-EU VAT
number says the customer is a business unless the file says otherwise —
but only of a customer whose kind is not known yet (:func:`implied_kind`):
a public buyer or a sole trader set as a consumer has a SIREN too, and what
a person or a kind column said stands.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stdnum import exceptions as stdnum_errors
from stdnum.eu import vat
from stdnum.fr import siren, siret

from relances.daemon.ledger.parsing import fold

KIND_WORDS: dict[str, str] = {
    "business": "business", "professionnel": "business", "pro": "business",
    "entreprise": "business", "societe": "business", "b2b": "business",
    "public": "public", "acheteur public": "public", "administration": "public",
    "collectivite": "public", "secteur public": "public", "b2g": "public",
    "consumer": "consumer", "particulier": "consumer", "b2c": "consumer",
    "personne physique": "consumer",
    "unknown": "unknown", "inconnu": "unknown", "inconnue": "unknown",
}

# How the command line and the cards name each kind, in French.
KIND_LABELS = {"business": "professionnel", "public": "acheteur public",
               "consumer": "particulier", "unknown": "nature inconnue"}


def parse_kind(text: str) -> str:
    """``"Professionnel"`` → ``"business"``; raises ValueError."""
    kind = KIND_WORDS.get(fold(text))
    if kind is None:
        raise ValueError(f"kind must be business, public or consumer, not {text!r}")
    return kind


def parse_siren(text: str) -> str:
    """A SIREN (9 digits) or a SIRET (14 digits) → the SIREN; raises ValueError."""
    digits = "".join(text.split())
    try:
        if len(digits) == 14:
            return str(siret.validate(digits))[:9]
        return str(siren.validate(digits))
    except stdnum_errors.ValidationError:
        raise ValueError(f"not a valid SIREN or SIRET: {text!r}") from None


def parse_vat(text: str) -> str:
    """An intra-EU VAT number, compacted (``FR40303265045``); raises ValueError."""
    try:
        return str(vat.validate(text))
    except stdnum_errors.ValidationError:
        raise ValueError(f"not a valid intra-EU VAT number: {text!r}") from None


def implied_kind(values: Mapping[str, Any], current: str | None) -> str | None:
    """``business`` when a file gives a SIREN or VAT number but no kind for a customer
    whose kind is not known (``current``: None for a new customer); else None."""
    if values.get("kind") or not (values.get("siren") or values.get("vat_number")):
        return None
    return "business" if current in (None, "unknown") else None
