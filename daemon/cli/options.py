"""The option and argument types the commands share: dates, amounts, files."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import click

from relances.daemon.ledger.parsing import parse_amount, parse_date


class DateType(click.ParamType):
    """``24/11/2024`` or ``2024-11-24``."""

    name = "DATE"

    def convert(self, value: object, param: click.Parameter | None,
                ctx: click.Context | None) -> dt.date:
        if isinstance(value, dt.date):
            return value
        try:
            return parse_date(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class AmountType(click.ParamType):
    name = "AMOUNT"

    def convert(self, value: object, param: click.Parameter | None,
                ctx: click.Context | None) -> Decimal:
        try:
            return parse_amount(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


DATE = DateType()
AMOUNT = AmountType()
FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


def as_of_option(func):  # type: ignore[no-untyped-def]
    return click.option("--as-of", type=DATE, default=None,
                        help="Business date to act as of [default: today].")(func)
