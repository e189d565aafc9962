"""Reading and writing many rows at once, at the driver's speed.

:func:`bulk_insert` sends SQLAlchemy's own compiled INSERT through the
driver's ``executemany``, each value through its column's bind processor,
``BULK`` rows at a time; :func:`bulk_update` does the same for an UPDATE of
rows by id; :func:`bulk_select` runs a SELECT of table columns through the
driver and converts each column with its type's result processor, each
distinct value once.  :func:`history_row` is one line of history as those
inserts take it.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import groupby, repeat
from operator import itemgetter
from typing import Any

from sqlalchemy import Dialect, Select, Table, bindparam, insert, update
from sqlalchemy.ext.asyncio import AsyncSession

from relances.daemon.models import utcnow

CHUNK = 900  # values of an IN list (SQLite before 3.32 takes 999 at most)
BULK = 5000  # rows of one executemany at the driver's level


def uniform(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same keys in every row, so one executemany takes them all."""
    keys = {key for row in rows for key in row}
    return [{key: row.get(key) for key in keys} for row in rows]


async def bulk_insert(session: AsyncSession, model: type[Any], rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` with executemany, BULK rows at a time (see :class:`_DriverInsert`).

    What the ORM's bulk INSERT of the same dicts writes, without its cost
    and without its splitting the rows into one statement per run of rows
    that have None in different columns: as there, a None in a column that
    has a default leaves the column to its default.
    """
    table: Table = model.__table__
    defaulted = [c.key for c in table.columns if c.default is not None or c.server_default is not None]

    def dropped(row: dict[str, Any]) -> tuple[str, ...]:
        return tuple(key for key in defaulted if key in row and row[key] is None)

    for keys, run in groupby(rows, key=dropped):
        batch = list(run)
        if keys:
            batch = [{k: v for k, v in row.items() if k not in keys} for row in batch]
        plan = _driver_insert(session.get_bind().dialect, table, batch[0]) if batch else None
        if plan is None:
            for i in range(0, len(batch), CHUNK):
                await session.execute(insert(table), batch[i:i + CHUNK])
            continue
        connection = await session.connection()
        for i in range(0, len(batch), BULK):
            await connection.exec_driver_sql(plan.sql, plan.parameters(batch[i:i + BULK]))


# Values of these classes are processed the same whenever they are equal, so each
# distinct one is processed once (not bools with ints: True == 1; not datetimes:
# equal instants in two time zones; not Decimals: 1.0 == 1.00).
_BY_VALUE = (frozenset({int, str, dt.date, type(None)}), frozenset({bool, type(None)}))


def _processed(process: Callable[[Any], Any], values: list[Any]) -> list[Any]:
    """``[process(v) for v in values]``, processing each distinct value once where
    that gives the same (one object for every row, dates, numbers, text)."""
    if not values:
        return values
    first = values[0]
    if all(map(operator.is_, values, repeat(first))):  # a timestamp every row shares
        return [process(first)] * len(values)
    classes = set(map(type, values))
    if any(classes <= safe for safe in _BY_VALUE):
        distinct = set(values)
        if 4 * len(distinct) <= len(values):
            done = {value: process(value) for value in distinct}
            return list(map(done.__getitem__, values))
    return list(map(process, values))


@dataclass
class _DriverInsert:
    """An INSERT run by the driver's executemany, its parameters built here.

    The statement is SQLAlchemy's own, compiled for the dialect; each value
    goes through the bind processor SQLAlchemy would apply to its column
    (once per distinct date, once for a timestamp every row shares), and
    the scalar defaults SQLAlchemy would fill in are given outright.  What
    is written is what ``session.execute(insert(table), rows)`` writes, at
    a fraction of its cost per row.
    """

    sql: str
    # Where each parameter comes from, in the SQL's order: a key of the rows and its
    # column's bind processor (or None), or a default already processed.
    sources: list[tuple[str, Callable[[Any], Any] | None] | tuple[None, Any]]

    def parameters(self, rows: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
        """The rows as the driver takes them, a column at a time."""
        columns: list[list[Any]] = []
        for key, source in self.sources:
            if key is None:
                columns.append([source] * len(rows))
                continue
            values = list(map(itemgetter(key), rows))
            columns.append(values if source is None else _processed(source, values))
        return list(zip(*columns, strict=True))


def _driver_insert(dialect: Dialect, table: Table, first: dict[str, Any]) -> _DriverInsert | None:
    """How to insert rows with the keys of ``first`` at the driver's level; None when
    the statement needs what only SQLAlchemy's execution does (a default computed
    per row, named parameters, RETURNING)."""
    defaults: dict[str, Any] = {}
    for column in table.columns:
        default = column.default
        if column.key in first or default is None:
            continue
        if not default.is_scalar:
            return None
        defaults[column.key] = default.arg  # type: ignore[attr-defined]
    keys = [*first, *defaults]
    compiled = insert(table).compile(dialect=dialect, column_keys=keys, for_executemany=True)
    order = compiled.positiontup
    if not compiled.positional or order is None or sorted(order) != sorted(keys) \
            or compiled.insert_prefetch or compiled.returning:
        return None
    sources: list[tuple[str, Callable[[Any], Any] | None] | tuple[None, Any]] = []
    for key in order:
        process = table.columns[key].type.dialect_impl(dialect).bind_processor(dialect)
        if key in defaults:
            value = defaults[key]
            sources.append((None, value if process is None else process(value)))
        else:
            sources.append((key, process))
    return _DriverInsert(compiled.string, sources)


async def rows_in(session: AsyncSession, query: Select[Any], column: Any,
                  values: Sequence[Any]) -> list[Any]:
    """The rows of ``query`` whose ``column`` is one of ``values``, CHUNK values to a
    statement (SQLite takes 999 parameters at most)."""
    found: list[Any] = []
    for i in range(0, len(values), CHUNK):
        found += (await session.execute(query.where(column.in_(values[i:i + CHUNK])))).all()
    return found


async def bulk_update(session: AsyncSession, model: type[Any], rows: Sequence[dict[str, Any]]) -> None:
    """``UPDATE`` each row (its ``id`` and the same other keys in every row), through
    the driver's executemany with each value through its column's bind processor."""
    if not rows:
        return
    table: Table = model.__table__
    dialect = session.get_bind().dialect
    keys = [key for key in rows[0] if key != "id"]
    statement = update(table).where(table.c.id == bindparam("row_id")) \
        .values({key: bindparam(f"set_{key}") for key in keys})
    compiled = statement.compile(dialect=dialect, for_executemany=True)
    order = compiled.positiontup
    if not compiled.positional or order is None:
        for i in range(0, len(rows), CHUNK):
            await session.execute(statement, [{"row_id": r["id"], **{f"set_{k}": r[k] for k in keys}}
                                              for r in rows[i:i + CHUNK]])
        return
    sources = []
    for name in order:
        key = "id" if name == "row_id" else name.removeprefix("set_")
        process = table.columns[key].type.dialect_impl(dialect).bind_processor(dialect)
        sources.append((key, process))
    connection = await session.connection()
    for i in range(0, len(rows), BULK):
        batch = rows[i:i + BULK]
        columns = [_processed(p, [r[k] for r in batch]) if p else [r[k] for r in batch]
                   for k, p in sources]
        await connection.exec_driver_sql(compiled.string, list(zip(*columns, strict=True)))


async def bulk_select(session: AsyncSession, query: Select[Any]) -> list[tuple[Any, ...]]:
    """The rows of a SELECT of table columns, as the ORM would type them: through the
    driver, each column converted by its type's result processor (each distinct
    value once: the dates and amounts of a ledger repeat)."""
    dialect = session.get_bind().dialect
    compiled = query.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    parameters = compiled.params
    if compiled.positional and compiled.positiontup is not None:
        parameters = tuple(parameters[name] for name in compiled.positiontup)  # type: ignore[assignment]
    connection = await session.connection()
    result = await connection.exec_driver_sql(compiled.string, parameters)
    raw = result.fetchall()
    processors = [column.type.dialect_impl(dialect).result_processor(dialect, None)
                  for column in query.selected_columns]
    columns = [list(values) for values in zip(*raw, strict=True)] if raw else [[] for _ in processors]
    converted = [_processed(p, values) if p else values
                 for p, values in zip(processors, columns, strict=True)]
    return list(zip(*converted, strict=True))


def history_row(user: str, invoice_id: int | None, customer_id: int | None, event: str,
             action: str, *, level: int | None = None) -> dict[str, Any]:
    return {"at": utcnow(), "user": user, "invoice_id": invoice_id, "customer_id": customer_id,
            "event": event, "action": action[:300], "level": level, "channel": None,
            "reference": None}
