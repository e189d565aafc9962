"""a level's letter joins the invoice's copy as set on the screen

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 02:00:00

``letter_options`` keeps, per policy and level, whether the letter joins
the copy of the invoice, as ticked in the web screen's letter editor; it
wins over ``policies.<name>.levels.<N>.attach_invoice``, which stays the
value of a level nobody set.  Empty after the upgrade: the settings apply.

``bank_entries`` gains an index on ``statement_id``: an import reads back
the ids of the entries it has just written by their statement.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'letter_options',
        sa.Column('id', Id, nullable=False),
        sa.Column('policy', sa.String(length=64), nullable=False),
        sa.Column('level', sa.Integer(), nullable=False),
        sa.Column('attach_invoice', sa.Boolean(), nullable=False),
        sa.Column('updated_by', sa.String(length=100), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_letter_options')),
        sa.UniqueConstraint('policy', 'level', name='uq_letter_options_level'),
    )
    op.create_index('ix_bank_entries_statement_id', 'bank_entries', ['statement_id'])


def downgrade() -> None:
    op.drop_index('ix_bank_entries_statement_id', table_name='bank_entries')
    op.drop_table('letter_options')
