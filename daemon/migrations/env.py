"""Alembic environment: runs on the connection handed over by ``storage.upgrade``."""

from __future__ import annotations

from alembic import context

from relances.daemon.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only `relances init` drives migrations
    raise RuntimeError("run migrations through `relances init`")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
