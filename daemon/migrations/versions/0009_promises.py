"""a customer's promise to pay holds their reminders until its date and a grace period

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 01:00:00

``customers`` gains ``promised_on``, the day a customer promised to pay
(recorded in the centre d'actions), and ``promise_until``, that day plus
``customers.promise_grace_days``: no new reminder goes to them until then.
Once it has passed with an overdue invoice still unpaid, the history says
the promise was not kept and both are cleared.  Existing customers have
made no promise.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('customers') as batch:
        batch.add_column(sa.Column('promised_on', sa.Date(), nullable=True))
        batch.add_column(sa.Column('promise_until', sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('customers') as batch:
        batch.drop_column('promise_until')
        batch.drop_column('promised_on')
