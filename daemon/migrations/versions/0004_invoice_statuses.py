"""e-invoicing statuses: the CDAR messages read, one row per invoice and status

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 13:00:00

New table ``invoice_statuses``: each life-cycle status an e-invoicing
platform reported (212 Encaissée, 207 En litige, 211 Paiement transmis…),
unique by message, invoice and code, so that reading a message twice acts
once.  Existing rows are untouched.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'invoice_statuses',
        sa.Column('id', Id, nullable=False),
        sa.Column('identity', sa.String(length=300), nullable=False),
        sa.Column('invoice_id', Id, nullable=False),
        sa.Column('code', sa.String(length=3), nullable=False),
        sa.Column('reason', sa.String(length=300), nullable=True),
        sa.Column('amount', sa.BigInteger(), nullable=True),
        sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('source', sa.String(length=300), nullable=False),
        sa.Column('read_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('read_by', sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], ondelete='CASCADE',
                                name=op.f('fk_invoice_statuses_invoice_id_invoices')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_invoice_statuses')),
        sa.UniqueConstraint('identity', name=op.f('uq_invoice_statuses_identity')),
    )
    op.create_index('ix_invoice_statuses_invoice_id', 'invoice_statuses', ['invoice_id'])


def downgrade() -> None:
    op.drop_index('ix_invoice_statuses_invoice_id', 'invoice_statuses')
    op.drop_table('invoice_statuses')
