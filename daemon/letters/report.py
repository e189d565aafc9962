"""The printed reminders table (the seed's "Imprimer le tableau des relances")."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import asdict, is_dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from relances.daemon.config import Settings
from relances.daemon.ledger.listing import reminders_table
from relances.daemon.letters.context import sender_fields

TEMPLATE = "report.html"
ROW_FIELDS = (
    "customer_code", "affiliate_code", "customer_name", "email", "invoice_date",
    "invoice_number", "assignment", "representative", "total", "remaining", "due_date",
    "payment_method", "last_reminded_on", "level", "days_overdue", "on_hold", "hold_reason",
)


def _row(row: Any) -> dict[str, Any]:
    data = asdict(row) if is_dataclass(row) and not isinstance(row, type) else dict(row)
    out = {key: data[key] for key in ROW_FIELDS}
    # Templates print text; an absent code or email is blank, not "None".
    for key in ("affiliate_code", "email", "assignment", "representative", "payment_method",
                "hold_reason"):
        out[key] = out[key] or ""
    return out


def report_context(settings: Settings, rows: Sequence[Any], *, as_of: dt.date,
                   language: str) -> dict[str, Any]:
    """Merge fields of the reminders table, from :class:`~relances.daemon.ledger.listing.ReminderRow`."""
    plain = [_row(r) for r in rows]
    zero = Decimal("0.00")
    by_level = []
    for level in (0, 1, 2, 3):
        chosen = [r for r in plain if r["level"] == level]
        if chosen:
            by_level.append({"level": level, "count": len(chosen),
                             "remaining": sum((r["remaining"] for r in chosen), zero)})
    return {
        "language": language,
        "today": as_of,
        "sender": sender_fields(settings),
        "rows": plain,
        "totals": {
            "count": len(plain),
            "customers": len({r["customer_code"] for r in plain}),
            "total": sum((r["total"] for r in plain), zero),
            "remaining": sum((r["remaining"] for r in plain), zero),
            "by_level": by_level,
        },
    }


async def load_report_context(session: AsyncSession, settings: Settings, *,
                              as_of: dt.date) -> dict[str, Any]:
    rows = await reminders_table(session, settings, as_of=as_of)
    return report_context(settings, rows, as_of=as_of,
                          language=settings.letters.default_language)
