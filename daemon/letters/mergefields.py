"""The merge-field catalogue: what templates may use, with samples.

``docs/merge-fields.md`` is generated from :func:`markdown` and a test
checks that the catalogue names exactly the keys :func:`build_context`
and :func:`report_context` produce, so the documentation cannot drift.
The same samples feed the template check run at configuration load.

Regenerate the documentation with
``python -m relances.daemon.letters.mergefields > docs/merge-fields.md``.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from relances.daemon.config import Settings
from relances.daemon.letters.context import build_context
from relances.daemon.letters.report import report_context
from relances.daemon.models import Customer, Invoice

SAMPLE_DATE = dt.date(2024, 11, 22)

LETTER_FIELDS: dict[str, str] = {
    "kind": '"letter" or "statement"',
    "level": "reminder level of the document, 1 to 3 (a statement: the highest of its invoices)",
    "language": "language of the letter, `fr` or `en`",
    "subject": "subject line, e.g. «Relance n°2 – facture COD_F1026»",
    "today": "date of the letter (the business date, or `--as-of`)",
    "place": "place written before the date: `sender.place`, else `sender.city`",
    "deadline": "payment deadline: today + `formal_notice_deadline_days` of the policy",
    "deadline_days": "`formal_notice_deadline_days` of the customer's policy",
    "attach_invoice": "whether this level sends a copy of the invoice with the letter",
    "sender.name": "company name (settings `sender`)",
    "sender.address": "street lines, a list",
    "sender.postal_code": "postal code",
    "sender.city": "city",
    "sender.country": "country",
    "sender.siret": "SIRET number",
    "sender.vat_number": "intra-EU VAT number",
    "sender.phone": "phone",
    "sender.email": "email address",
    "sender.website": "website",
    "sender.iban": "IBAN for transfers",
    "sender.bic": "BIC",
    "sender.signatory": "name signing the letters",
    "sender.logo": "file URL of the logo, or empty when none is set",
    "customer.code": "customer code",
    "customer.affiliate_code": "affiliate code",
    "customer.name": "customer name",
    "customer.address": "address lines for the envelope window, a list",
    "customer.email": "email address",
    "customer.phone": "phone",
    "customer.fax": "fax number",
    "customer.language": "customer's language",
    "customer.kind": "`business`, `public`, `consumer` or `unknown`; late charges are claimed "
                     "from `business` and `public` only",
    "customer.is_consumer": "true for a consumer (no late charges)",
    "invoice": "the letter's invoice (fields as in `invoices[]`); empty for a statement",
    "invoices[].number": "invoice number",
    "invoices[].label": "what the books call an item that is not one invoice "
                        "(«Solde à nouveau»), else empty",
    "invoices[].date": "invoice date",
    "invoices[].due_date": "due date",
    "invoices[].total": "invoice total, tax included",
    "invoices[].remaining": "amount still due",
    "invoices[].days_overdue": "days since the due date",
    "invoices[].level": "the invoice's reminder level",
    "invoices[].last_reminded_on": "date of the last reminder sent, or empty",
    "invoices[].payment_method": "payment method",
    "invoices[].interest": "late-payment interest claimed (0 when not claimed)",
    "invoices[].interest_periods[].start": "first day counted at this rate (the periods: the "
                                           "rates the interest was counted at, oldest first; "
                                           "none when not claimed)",
    "invoices[].interest_periods[].end": "last day counted at this rate",
    "invoices[].interest_periods[].days": "days counted at this rate",
    "invoices[].interest_periods[].year": "the half-year's year (empty when one rate covers the "
                                          "whole delay: a public buyer)",
    "invoices[].interest_periods[].half": "1 (January to June) or 2 (July to December)",
    "invoices[].interest_periods[].annual_rate": "annual interest rate, in percent",
    "invoices[].interest_periods[].reference_rate": "the ECB rate of that half-year, in percent",
    "invoices[].indemnity": "recovery indemnity claimed (0 when not claimed)",
    "invoices[].amount_due": "remaining + interest + indemnity",
    "invoices[].payment_reference": "the invoice's creditor reference (ISO 11649), grouped by "
                                    "four for reading; built from the number when it is 1 to 21 "
                                    "letters and digits, else from the invoice's id",
    "totals.count": "number of invoices",
    "totals.total": "sum of the invoice totals",
    "totals.remaining": "sum still due",
    "totals.interest": "sum of the interest claimed",
    "totals.indemnity": "sum of the indemnities claimed",
    "totals.amount_due": "remaining + charges",
    "totals.credit": "the customer's credit (an overpayment kept for them) set against it, on a "
                     "statement; 0 on a letter",
    "totals.to_pay": "what the document asks for: `amount_due` less `credit`, never below 0",
    "payment.reference": "the creditor reference (ISO 11649) the transfer should quote, grouped "
                         "by four: the invoice's for a letter, the statement's own for a "
                         "statement (customer and date)",
    "payment.amount": "what the document asks for (`totals.to_pay`), the QR code's amount",
    "payment.iban": "the sender's IBAN grouped by four, or empty when `sender.iban` is not set",
    "payment.bic": "the sender's BIC, without spaces",
    "payment.qr": "a `data:` URI of the EPC QR code (SEPA credit transfer) as SVG, for an "
                  "`<img src>`; empty when `sender.iban` is not set or does not validate, "
                  "or the amount is not payable",
    "late_charges.claimed": "whether this letter claims late charges "
                            "(level setting `late_charges`, business customers only)",
    "late_charges.annual_rate": "annual interest rate of the letter's day, in percent",
    "late_charges.reference_rate": "reference (ECB) rate of the letter's half-year, in percent",
    "late_charges.margin_points": "points added to the reference rate (10; 8 for a public "
                                  "buyer)",
    "late_charges.periods[].year": "the half-year's year (the periods: each half-year the "
                                   "letter counts interest in, oldest first; more than one when "
                                   "a delay crosses 1 January or 1 July)",
    "late_charges.periods[].half": "1 (January to June) or 2 (July to December)",
    "late_charges.periods[].annual_rate": "that half-year's annual rate, in percent",
    "late_charges.periods[].reference_rate": "that half-year's ECB rate, in percent",
    "late_charges.indemnity_per_invoice": "fixed recovery indemnity per invoice (40 €)",
}

REPORT_FIELDS: dict[str, str] = {
    "language": "language of the report",
    "today": "date of the report",
    "sender": "the sender, fields as for letters",
    "rows[].customer_code": "customer code",
    "rows[].affiliate_code": "affiliate code",
    "rows[].customer_name": "customer name",
    "rows[].email": "customer email",
    "rows[].invoice_date": "invoice date",
    "rows[].invoice_number": "invoice number",
    "rows[].assignment": "assignment (Affect.)",
    "rows[].representative": "sales representative (Repr.)",
    "rows[].total": "invoice total",
    "rows[].remaining": "amount still due",
    "rows[].due_date": "due date",
    "rows[].payment_method": "payment method",
    "rows[].last_reminded_on": "date of the last reminder sent",
    "rows[].level": "reminder level, 0 to 3",
    "rows[].days_overdue": "days since the due date",
    "rows[].on_hold": "in dispute",
    "rows[].hold_reason": "reason of the dispute",
    "totals.count": "number of rows",
    "totals.customers": "number of customers",
    "totals.total": "sum of the invoice totals",
    "totals.remaining": "sum still due",
    "totals.by_level[].level": "a level (0 = never reminded)",
    "totals.by_level[].count": "invoices at that level",
    "totals.by_level[].remaining": "sum still due at that level",
}

# Groups documented once elsewhere: the letter's invoice is one of `invoices[]`,
# the report's sender is the letters' sender.
LETTER_GROUPS = frozenset({"invoice"})
REPORT_GROUPS = frozenset({"sender"})


def sample_customer(*, consumer: bool = False, language: str = "fr",
                    kind: str | None = None) -> Customer:
    return Customer(
        id=1, code="INT01", affiliate_code="INT01", name="INTEL", email="compta@intel.example",
        phone="01 23 45 67 89", fax=None, address_line1="2 rue de Paris",
        address_line2="Bâtiment B", postal_code="92190", city="MEUDON", country=None,
        language=language, kind=kind or ("consumer" if consumer else "business"), policy=None,
    )


def sample_invoices(level: int) -> list[Invoice]:
    return [
        Invoice(id=1026, number="COD_F1026", invoice_date=dt.date(2024, 2, 8),
                due_date=dt.date(2024, 2, 8), total=Decimal("680.40"),
                remaining=Decimal("680.40"), payment_method="Chèque", level=level,
                last_reminded_on=dt.date(2024, 11, 19)),
        Invoice(id=1031, number="COD_F1031", invoice_date=dt.date(2024, 3, 15),
                due_date=dt.date(2024, 4, 14), total=Decimal("1253.06"),
                remaining=Decimal("572.66"), payment_method="Virement", level=max(1, level - 1),
                last_reminded_on=None),
    ]


def sample_context(settings: Settings, *, kind: str = "letter", level: int = 1,
                   language: str = "fr", consumer: bool = False) -> dict[str, Any]:
    """A realistic context built by the real builder, for checks and docs."""
    invoices = sample_invoices(level)
    if kind == "letter":
        invoices = invoices[:1]
    return build_context(settings, sample_customer(consumer=consumer, language=language),
                         invoices, kind=kind, level=level, as_of=SAMPLE_DATE,
                         language=language)


def sample_report_context(settings: Settings, language: str = "fr") -> dict[str, Any]:
    rows = []
    for invoice in sample_invoices(2):
        rows.append({
            "customer_code": "INT01", "affiliate_code": "INT01", "customer_name": "INTEL",
            "email": None, "invoice_date": invoice.invoice_date,
            "invoice_number": invoice.number, "assignment": "PC", "representative": "PC",
            "total": invoice.total, "remaining": invoice.remaining,
            "due_date": invoice.due_date, "payment_method": invoice.payment_method,
            "last_reminded_on": invoice.last_reminded_on, "level": invoice.level,
            "days_overdue": (SAMPLE_DATE - invoice.due_date).days,
            "on_hold": False, "hold_reason": None,
        })
    return report_context(settings, rows, as_of=SAMPLE_DATE, language=language)


def field_paths(value: Any, groups: frozenset[str] = frozenset(),
                prefix: str = "") -> Iterator[str]:
    """Dotted paths of a context's leaves, lists of dicts as ``name[].field``."""
    if isinstance(value, dict) and prefix not in groups:
        for key, item in value.items():
            yield from field_paths(item, groups, f"{prefix}.{key}" if prefix else key)
    elif isinstance(value, list) and value and isinstance(value[0], dict):
        yield from field_paths(value[0], groups, f"{prefix}[]")
    else:
        yield prefix


def markdown(settings: Settings | None = None) -> str:
    """The merge-field reference, as written to ``docs/merge-fields.md``."""
    from relances.daemon.config import Settings as _Settings
    from relances.daemon.letters.templating import make_environment

    settings = settings or _Settings()
    env = make_environment(settings, "fr")
    letter = sample_context(settings, kind="statement", level=3)
    letter["invoice"] = letter["invoices"][0]
    out = [_HEADER]
    out += _table("Letters and statements", LETTER_FIELDS, letter, env)
    out += _table("Reminders table (`report.html`)", REPORT_FIELDS,
                  sample_report_context(settings), env)
    return "\n".join(out) + "\n"


def _example(context: dict[str, Any], path: str, env: Any) -> str:
    value: Any = context
    for part in path.split("."):
        if isinstance(value, list):
            value = value[0] if value else None
        key = part.removesuffix("[]")
        value = value.get(key) if isinstance(value, dict) else None
    if isinstance(value, list) and value and isinstance(value[0], dict):
        value = value[0]
    if isinstance(value, Decimal) and path.split(".")[-1] not in _RATES:
        return env.filters["money"](value)
    if isinstance(value, dt.date):
        return env.filters["date"](value)
    if isinstance(value, dict | list):
        return "…"
    if isinstance(value, str) and value.startswith("data:"):
        return value.split(",", 1)[0] + ",…"
    return "" if value is None else str(value).replace("|", "\\|")


_RATES = {"annual_rate", "reference_rate", "margin_points"}

_HEADER = """# Merge fields

<!-- Generated by `python -m relances.daemon.letters.mergefields`; a test keeps it in sync. -->

Templates receive plain data only. Write a field as `{{ customer.name }}`, loop
over lists with `{% for i in invoices %}{{ i.number }}{% endfor %}`. An unknown
field stops `relances check-config` with the file, the line and the field.

A template reads only files of its templates folder: `{% include %}` and
`{% extends %}` refuse a link that leads out of it. Its work is bounded
(`letters.render_timeout`, `letters.render_memory_mb`,
`letters.render_output_mb`): a loop without end, a text doubled until it
fills the memory, or a macro that calls itself fails the check and the
letter with the template's name.

Filters (Babel, in the letter's language):

| filter | example |
|---|---|
| `{{ invoice.remaining \\| money }}` | `680,40 €`, `1 253,06 €` |
| `{{ today \\| date }}` | `22/11/2024` |
| `{{ today \\| date("long") }}` | `22 novembre 2024`, `1er décembre 2026` |
| `{{ late_charges.annual_rate \\| rate }}` | `12,15 %` |
| `{{ invoice.days_overdue \\| days }}` | `1 027 j` (`1,027 d` in English) |

Examples below come from the sample the template check renders (a level-3
statement for INTEL on 22/11/2024)."""


def _table(title: str, fields: dict[str, str], context: dict[str, Any], env: Any) -> list[str]:
    lines = ["", f"## {title}", "", "| field | meaning | example |", "|---|---|---|"]
    for path, meaning in fields.items():
        example = _example(context, path, env)
        lines.append(f"| `{path}` | {meaning} | {example.replace(chr(0xa0), ' ')} |")
    return lines


if __name__ == "__main__":
    sys.stdout.write(markdown())
