"""ORM rows to merge fields: the plain dict every letter template receives.

Nothing here touches the database; :mod:`relances.daemon.letters.documents` reads the
rows and :mod:`relances.daemon.letters.mergefields` builds its samples with the
same functions, so the documented fields are the real ones.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from babel import Locale

from relances.daemon.config import Settings
from relances.daemon.errors import RenderError
from relances.daemon.ledger.latecharges import (
    ZERO,
    Period,
    current_rate,
    late_charges,
    margin_points,
)
from relances.daemon.ledger.references import (
    format_reference,
    invoice_reference,
    statement_reference,
)
from relances.daemon.letters.payment import payment_fields
from relances.daemon.letters.templating import logo_path
from relances.daemon.models import Customer, Invoice

_SUBJECTS = {
    "fr": {
        "letter": "Relance n°{level} – facture {key}",
        "letter3": "Mise en demeure – facture {key}",
        "statement": "Relevé de compte – {key}",
        "statement3": "Mise en demeure – relevé de compte – {key}",
    },
    "en": {
        "letter": "Reminder no. {level} – invoice {key}",
        "letter3": "Formal notice – invoice {key}",
        "statement": "Statement of account – {key}",
        "statement3": "Formal notice – statement of account – {key}",
    },
}


def subject_for(language: str, kind: str, level: int, key: str) -> str:
    """``Relance n°2 – facture COD_F1026``; level 3 is a formal notice."""
    subjects = _SUBJECTS.get(language, _SUBJECTS["fr"])
    return subjects[f"{kind}3" if level == 3 else kind].format(level=level, key=key)


def sender_fields(settings: Settings) -> dict[str, Any]:
    s = settings.sender
    logo = logo_path(settings)
    return {
        "name": s.name,
        "address": list(s.address),
        "postal_code": s.postal_code,
        "city": s.city,
        "country": s.country,
        "siret": s.siret,
        "vat_number": s.vat_number,
        "phone": s.phone,
        "email": s.email,
        "website": s.website,
        "iban": s.iban,
        "bic": s.bic,
        "signatory": s.signatory,
        # A file URL the PDF engine's fetcher is told to allow; None when unset or missing.
        "logo": logo.resolve().as_uri() if logo and logo.is_file() else None,
    }


def customer_fields(customer: Customer) -> dict[str, Any]:
    return {
        "code": customer.code,
        "affiliate_code": customer.affiliate_code or "",
        "name": customer.name,
        "address": list(customer.address),
        "email": customer.email or "",
        "phone": customer.phone or "",
        "fax": customer.fax or "",
        "language": customer.language,
        "kind": customer.kind,
        "is_consumer": customer.is_consumer,
    }


def _reference_of(invoice: Invoice) -> str:
    """The invoice's RF reference; a row not yet flushed has no id to build it from."""
    try:
        return invoice_reference(invoice.number, invoice.id)
    except ValueError as exc:
        raise RenderError(f"invoice {invoice.number}: no payment reference ({exc})") from None


def _statement_reference(customer: Customer, as_of: dt.date) -> str:
    try:
        return statement_reference(customer.id, as_of)
    except ValueError as exc:
        raise RenderError(f"customer {customer.code}: no payment reference ({exc})") from None


def _period_fields(period: Period) -> dict[str, Any]:
    return {"start": period.start, "end": period.end, "days": period.days,
            "year": period.year, "half": period.half, "annual_rate": period.annual_rate,
            "reference_rate": period.reference_rate}


def invoice_fields(settings: Settings, invoice: Invoice, *, as_of: dt.date,
                   claim_charges: bool, is_consumer: bool, kind: str = "business",
                   payments: Sequence[tuple[dt.date, Decimal]] = ()) -> dict[str, Any]:
    charges = late_charges(invoice.remaining, invoice.due_date, as_of, settings.late_charges,
                           is_consumer=is_consumer, kind=kind, payments=payments)
    interest = charges.interest if claim_charges else ZERO
    indemnity = charges.indemnity if claim_charges else ZERO
    return {
        "number": invoice.number,
        "label": invoice.label or "",
        "date": invoice.invoice_date,
        "due_date": invoice.due_date,
        "total": invoice.total,
        "remaining": invoice.remaining,
        "days_overdue": max(0, (as_of - invoice.due_date).days),
        "level": invoice.level,
        "last_reminded_on": invoice.last_reminded_on,
        "payment_method": invoice.payment_method or "",
        "interest": interest,
        # The rates the interest was counted at: one per half-year of the delay.
        "interest_periods": [_period_fields(p) for p in charges.periods] if claim_charges else [],
        "indemnity": indemnity,
        "amount_due": invoice.remaining + interest + indemnity,
        # What the payer quotes, grouped by four for reading: "RF18 5390 0754 7034".
        "payment_reference": format_reference(_reference_of(invoice)),
    }


def _totals(invoices: list[dict[str, Any]], credit: Decimal) -> dict[str, Any]:
    def add(key: str) -> Decimal:
        return sum((i[key] for i in invoices), ZERO)

    amount_due = add("amount_due")
    return {
        "count": len(invoices),
        "total": add("total"),
        "remaining": add("remaining"),
        "interest": add("interest"),
        "indemnity": add("indemnity"),
        "amount_due": amount_due,
        # An overpayment kept for the customer is set against what a statement asks.
        "credit": credit,
        "to_pay": max(amount_due - credit, ZERO),
    }


def window_address(settings: Settings, customer: Customer) -> list[str]:
    """The address as the envelope window shows it: La Poste's norm leaves the
    country out of domestic mail, and puts it last for mail abroad."""
    lines = list(customer.address)
    country = (customer.country or "").strip()
    if lines and country and lines[-1] == country \
            and _country_name(country) == _country_name(settings.sender.country):
        lines.pop()
    return lines


def _country_name(value: str) -> str:
    """``FR``, ``fr`` and ``France`` alike: an ISO code is read as its country's name."""
    value = value.strip()
    if len(value) == 2 and value.isalpha():
        value = Locale("fr").territories.get(value.upper(), value)
    return value.casefold()


def build_context(settings: Settings, customer: Customer, invoices: Sequence[Invoice], *,
                  kind: str, level: int, as_of: dt.date, language: str,
                  payments: Mapping[int, Sequence[tuple[dt.date, Decimal]]] | None = None,
                  attach_invoice: bool | None = None) -> dict[str, Any]:
    """The merge fields of one letter or statement (see ``docs/merge-fields.md``);
    ``payments``: each invoice's (day, amount), for the interest of the days before them;
    ``attach_invoice``: whether the copy is joined, when a person set it (else the policy)."""
    policy = settings.policy(customer.policy)
    level_policy = policy.level(level)
    # Penalties and the indemnity only for a business or a public buyer: never
    # for a consumer, and not for a customer nobody described (uncertain means silent).
    claim = level_policy.late_charges and customer.owes_late_charges
    rows = [invoice_fields(settings, i, as_of=as_of, claim_charges=claim,
                           is_consumer=customer.is_consumer, kind=customer.kind,
                           payments=(payments or {}).get(i.id, ())) for i in invoices]
    lc = settings.late_charges
    public = customer.kind == "public"
    annual_rate = current_rate(as_of, lc, public=public)
    margin = margin_points(lc, public=public)
    # Every half-year rate the letter counts interest at, oldest first.
    half_years = sorted({(p["year"], p["half"], p["annual_rate"], p["reference_rate"])
                         for row in rows for p in row["interest_periods"] if p["year"] is not None})
    key = invoices[0].number if kind == "letter" else customer.name
    credit = customer.credit or ZERO
    totals = _totals(rows, credit if kind == "statement" and credit > 0 else ZERO)
    # A letter is paid under its invoice's reference, a statement under its own.
    reference = (_reference_of(invoices[0]) if kind == "letter"
                 else _statement_reference(customer, as_of))
    return {
        "kind": kind,
        "level": level,
        "language": language,
        "subject": subject_for(language, kind, level, key),
        "today": as_of,
        "place": settings.sender.place or settings.sender.city,
        "deadline": as_of + dt.timedelta(days=policy.formal_notice_deadline_days),
        "deadline_days": policy.formal_notice_deadline_days,
        "attach_invoice": (level_policy.attach_invoice if attach_invoice is None
                           else attach_invoice),
        "sender": sender_fields(settings),
        "customer": {**customer_fields(customer), "address": window_address(settings, customer)},
        "invoice": rows[0] if kind == "letter" else None,
        "invoices": rows,
        "totals": totals,
        "payment": payment_fields(settings, reference=reference, amount=totals["to_pay"]),
        "late_charges": {
            "claimed": claim,
            "annual_rate": annual_rate,
            "reference_rate": annual_rate - margin,
            "margin_points": margin,
            "periods": [dict(zip(("year", "half", "annual_rate", "reference_rate"), half_year,
                                 strict=True)) for half_year in half_years],
            "indemnity_per_invoice": lc.recovery_indemnity,
        },
    }
