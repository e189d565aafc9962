"""The pages' Jinja2 environment: the screen's own templates, autoescaped.

Not the letters' sandbox: these templates ship with the package and
nobody edits them; what is hostile is the data (a customer's name, an
invoice's label), which autoescape writes as text.  Amounts and dates are
written the French way, as the command line writes them.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.requests import Request
from starlette.responses import HTMLResponse

from relances.daemon import formatting as fmt
from relances.daemon.ledger.kinds import KIND_LABELS

TEMPLATES = Path(__file__).with_name("templates")
STATIC = Path(__file__).with_name("static")
CHANNEL_LABELS = {"print": "Courrier", "email": "Email", "fax": "Fax", "archive": "Archive"}
NOTE_KINDS = {"call": "Appel", "email": "Email", "letter": "Courrier", "visit": "Visite",
              "note": "Note", "promise": "Promesse de règlement"}


def _amount(value: Decimal | None) -> str:
    return fmt.amount(value)


def _date(value: dt.date | None) -> str:
    return fmt.date(value)


def _path_part(value: str) -> str:
    """A code or an invoice number as a part of a path ("/" kept: the routes take paths)."""
    return quote(str(value), safe="/")


def _query(params: dict[str, Any], **changes: Any) -> str:
    merged = {**params, **changes}
    return urlencode({k: v for k, v in merged.items() if v not in (None, "")})


def build_environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(montant=_amount, date_fr=_date, chemin=_path_part)
    env.globals.update(query=_query, KIND_LABELS=KIND_LABELS, CHANNEL_LABELS=CHANNEL_LABELS,
                       NOTE_KINDS=NOTE_KINDS)
    return env


class Pages:
    """Renders a page with what every page shows: the user, their role, messages, the token."""

    def __init__(self) -> None:
        self.env = build_environment()

    def render(self, request: Request, template: str, status_code: int = 200,
               **context: Any) -> HTMLResponse:
        session = request.state.session
        user = getattr(request.state, "user", None)
        html = self.env.get_template(template).render(
            request_path=request.url.path, csrf=session.csrf, messages=session.take_messages(),
            user=user, can=lambda needed: user is not None and user.may(needed), **context)
        return HTMLResponse(html, status_code=status_code)
