"""One document to render, as the render workers receive it.

Plain data only, in a module of its own that imports nothing of the
database: a render worker unpickles it without loading SQLAlchemy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["letter", "statement"]


@dataclass(frozen=True)
class LetterJob:
    """Everything a render worker needs for one document, as plain data."""

    kind: Kind
    level: int
    language: str
    template: str
    context: dict[str, Any]
    invoice_numbers: tuple[str, ...]
    customer_code: str
    copy_paths: tuple[str, ...]
    subject: str
    filename: str
