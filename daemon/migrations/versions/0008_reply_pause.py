"""a customer's reply pauses their reminders; bounces keep their refused addresses

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 15:30:00

``customers`` gains ``paused_until``: a reply of the customer to a
reminder (read from the ``mailboxes:``) keeps new reminders from them
until that day (``customers.reply_pause_days``), as a bank payment in
review does with ``review_until``.  Existing customers are not paused.
``inbound_messages`` gains ``refused``, the addresses a bounce refused for
good, so that a customer with two addresses whose two bounces come back
apart is known unreached; bounces read before have none.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('customers') as batch:
        batch.add_column(sa.Column('paused_until', sa.Date(), nullable=True))
    with op.batch_alter_table('inbound_messages') as batch:
        batch.add_column(sa.Column('refused', sa.Text(), server_default='', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('inbound_messages') as batch:
        batch.drop_column('refused')
    with op.batch_alter_table('customers') as batch:
        batch.drop_column('paused_until')
