"""bounces and the mailboxes they are read from

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 23:00:00

New table ``inbound_messages``: each message read from a mailbox of the
``mailboxes:`` setting, classified once (bounce, delayed, auto-reply,
reply, other) and tied to the reminder it answers.  ``customers`` gains
``email_bounced_at`` and ``email_bounce`` (the address bounced for good;
email no longer reaches the customer until the address changes), and
``reminders`` ``stamp_undo`` (what its stamp replaced, put back when its
email bounces).  Existing rows are untouched; reminders stamped before
this revision keep no undo: a bounce of one of them still falls back and
marks the address, and its history line says the stamp was left as it is.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'inbound_messages',
        sa.Column('id', Id, nullable=False),
        sa.Column('mailbox', sa.String(length=64), nullable=False),
        sa.Column('source', sa.String(length=300), nullable=False),
        sa.Column('uidvalidity', sa.BigInteger(), nullable=True),
        sa.Column('uid', sa.BigInteger(), nullable=True),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('reminder_id', Id, nullable=True),
        sa.Column('customer_id', Id, nullable=True),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('summary', sa.Text(), server_default='', nullable=False),
        sa.ForeignKeyConstraint(['reminder_id'], ['reminders.id'], ondelete='SET NULL',
                                name=op.f('fk_inbound_messages_reminder_id_reminders')),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ondelete='SET NULL',
                                name=op.f('fk_inbound_messages_customer_id_customers')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_inbound_messages')),
        sa.UniqueConstraint('mailbox', 'source', name='uq_inbound_messages_source'),
    )
    op.create_index('ix_inbound_messages_reminder_id', 'inbound_messages', ['reminder_id'])
    op.create_index('ix_inbound_messages_customer_id', 'inbound_messages', ['customer_id'])
    with op.batch_alter_table('customers') as batch:
        batch.add_column(sa.Column('email_bounced_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('email_bounce', sa.String(length=300), nullable=True))
    with op.batch_alter_table('reminders') as batch:
        batch.add_column(sa.Column('stamp_undo', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('reminders') as batch:
        batch.drop_column('stamp_undo')
    with op.batch_alter_table('customers') as batch:
        batch.drop_column('email_bounce')
        batch.drop_column('email_bounced_at')
    op.drop_table('inbound_messages')
