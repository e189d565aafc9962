"""the bank: statements, their entries, customers' IBANs, credits and review holds

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 10:10:00

New tables ``bank_statements``, ``bank_entries`` (one row per entry ever
read, unique by identity, so nothing is applied twice) and
``customer_ibans``; ``payments.bank_entry_id`` links a payment to the entry
that shows it; ``customers.credit`` holds an overpayment and
``customers.review_until`` keeps reminders back while a bank payment that
may be the customer's waits for a person.  Existing rows keep their
meaning: no credit, no hold, no entry.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'bank_statements',
        sa.Column('id', Id, nullable=False),
        sa.Column('source', sa.String(length=300), nullable=False),
        sa.Column('format', sa.String(length=32), nullable=False),
        sa.Column('account_iban', sa.String(length=34), nullable=True),
        sa.Column('statement_ref', sa.String(length=100), nullable=True),
        sa.Column('date', sa.Date(), nullable=True),
        sa.Column('entries', sa.Integer(), server_default='0', nullable=False),
        sa.Column('read_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('read_by', sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_bank_statements')),
    )
    op.create_table(
        'bank_entries',
        sa.Column('id', Id, nullable=False),
        sa.Column('identity', sa.String(length=200), nullable=False),
        sa.Column('statement_id', Id, nullable=False),
        sa.Column('booked_on', sa.Date(), nullable=False),
        sa.Column('value_date', sa.Date(), nullable=True),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('currency', sa.String(length=3), server_default='EUR', nullable=False),
        sa.Column('counterparty', sa.String(length=200), server_default='', nullable=False),
        sa.Column('counterparty_iban', sa.String(length=34), nullable=True),
        sa.Column('reference', sa.String(length=140), nullable=True),
        sa.Column('text', sa.Text(), server_default='', nullable=False),
        sa.Column('bank_reference', sa.String(length=140), nullable=True),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('rule', sa.String(length=32), nullable=True),
        sa.Column('note', sa.Text(), nullable=True),
        sa.Column('customer_id', Id, nullable=True),
        sa.Column('candidates', sa.Text(), server_default='', nullable=False),
        sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('resolved_by', sa.String(length=100), nullable=True),
        sa.CheckConstraint("state IN ('matched', 'known', 'review', 'ignored', 'debit')",
                           name=op.f('ck_bank_entries_state_known')),
        sa.ForeignKeyConstraint(['statement_id'], ['bank_statements.id'], ondelete='CASCADE',
                                name=op.f('fk_bank_entries_statement_id_bank_statements')),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ondelete='SET NULL',
                                name=op.f('fk_bank_entries_customer_id_customers')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_bank_entries')),
        sa.UniqueConstraint('identity', name=op.f('uq_bank_entries_identity')),
    )
    op.create_index('ix_bank_entries_state', 'bank_entries', ['state'])
    op.create_table(
        'customer_ibans',
        sa.Column('id', Id, nullable=False),
        sa.Column('customer_id', Id, nullable=False),
        sa.Column('iban', sa.String(length=34), nullable=False),
        sa.Column('source', sa.String(length=16), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ondelete='CASCADE',
                                name=op.f('fk_customer_ibans_customer_id_customers')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_ibans')),
        sa.UniqueConstraint('customer_id', 'iban', name='uq_customer_ibans_pair'),
    )
    op.create_index('ix_customer_ibans_iban', 'customer_ibans', ['iban'])
    with op.batch_alter_table('payments') as batch:
        batch.add_column(sa.Column('bank_entry_id', Id, nullable=True))
        batch.create_foreign_key(op.f('fk_payments_bank_entry_id_bank_entries'), 'bank_entries',
                                 ['bank_entry_id'], ['id'], ondelete='SET NULL')
        batch.create_index('ix_payments_bank_entry_id', ['bank_entry_id'])
    with op.batch_alter_table('customers') as batch:
        batch.add_column(sa.Column('credit', sa.BigInteger(), server_default='0', nullable=False))
        batch.add_column(sa.Column('review_until', sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('customers') as batch:
        batch.drop_column('review_until')
        batch.drop_column('credit')
    with op.batch_alter_table('payments') as batch:
        batch.drop_index('ix_payments_bank_entry_id')
        batch.drop_constraint(op.f('fk_payments_bank_entry_id_bank_entries'), type_='foreignkey')
        batch.drop_column('bank_entry_id')
    op.drop_index('ix_customer_ibans_iban', 'customer_ibans')
    op.drop_table('customer_ibans')
    op.drop_index('ix_bank_entries_state', 'bank_entries')
    op.drop_table('bank_entries')
    op.drop_table('bank_statements')
