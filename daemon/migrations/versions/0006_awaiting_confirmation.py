"""reminders awaiting their channel's confirmation

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 22:00:00

A reminder a channel has taken without confirming yet (a print job queued
in CUPS, a fax job in HylaFAX) waits in the new state ``awaiting``, with no
lease, until the channel says it went; ``handed_over_at`` is when the
channel took it.  Existing rows keep their states.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

OLD_STATES = "state IN ('pending', 'sending', 'sent', 'failed', 'cancelled')"
NEW_STATES = "state IN ('pending', 'sending', 'awaiting', 'sent', 'failed', 'cancelled')"


def upgrade() -> None:
    with op.batch_alter_table('reminders') as batch:
        batch.drop_constraint(op.f('ck_reminders_state_known'), type_='check')
        batch.create_check_constraint(op.f('ck_reminders_state_known'), NEW_STATES)
        batch.add_column(sa.Column('handed_over_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # What still waits for a confirmation goes back to the queue: it is sent
    # again, which is what the previous release would have done after a crash.
    op.execute("UPDATE reminders SET state = 'pending', lease_until = NULL "
               "WHERE state = 'awaiting'")
    with op.batch_alter_table('reminders') as batch:
        batch.drop_column('handed_over_at')
        batch.drop_constraint(op.f('ck_reminders_state_known'), type_='check')
        batch.create_check_constraint(op.f('ck_reminders_state_known'), OLD_STATES)
