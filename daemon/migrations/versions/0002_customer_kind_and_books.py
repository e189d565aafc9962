"""customer kind, SIREN and VAT; payments reflected in the books; invoices reminded here

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03 10:00:00

- ``customers.kind`` (business, public, consumer, unknown) replaces
  ``is_consumer``.  A customer marked as a consumer stays one; every other
  customer becomes ``unknown``, because release 0.1 cannot tell a business
  that a file or a person declared from one that nobody described: each of
  them gets a history line saying so, and ``relances init`` lists them.
- ``customers.siren`` and ``customers.vat_number``.
- ``payments.reflected``: whether the seller's books show the payment yet.
  Payments recorded before the upgrade are taken as not reflected, so that
  no stale export can undo them.
- ``invoices.reminded_here``: Relances itself sent a reminder for the
  invoice (taken from the history of sent reminders); an export's level and
  "Relancé le" no longer apply to it.
- ``invoices.label``: what the books call an item that is not one invoice
  (a FEC's aggregated opening balance: "Solde à nouveau").
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

KINDS = "kind IN ('business', 'public', 'consumer', 'unknown')"
UNKNOWN_AFTER_UPGRADE = "kind-unknown"


def upgrade() -> None:
    with op.batch_alter_table('customers') as batch:
        batch.add_column(sa.Column('kind', sa.String(length=16), server_default='unknown',
                                   nullable=False))
        batch.add_column(sa.Column('siren', sa.String(length=9), nullable=True))
        batch.add_column(sa.Column('vat_number', sa.String(length=20), nullable=True))
    customers = sa.table('customers', sa.column('id'), sa.column('kind'),
                         sa.column('is_consumer', sa.Boolean()))
    op.execute(customers.update().where(customers.c.is_consumer.is_(True))
               .values(kind='consumer'))
    history = sa.table('history', sa.column('at'), sa.column('user'), sa.column('customer_id'),
                       sa.column('event'), sa.column('action'))
    now = dt.datetime.now(dt.UTC)
    op.execute(history.insert().from_select(
        ['at', 'user', 'customer_id', 'event', 'action'],
        sa.select(sa.literal(now, sa.DateTime(timezone=True)), sa.literal('relances init'),
                  customers.c.id, sa.literal(UNKNOWN_AFTER_UPGRADE),
                  sa.literal("Nature du client inconnue après la mise à jour : pénalités et "
                             "indemnité non mentionnées tant qu'elle n'est pas précisée"))
        .where(customers.c.kind == 'unknown')))
    with op.batch_alter_table('customers') as batch:
        batch.drop_column('is_consumer')
        batch.create_check_constraint(op.f('ck_customers_kind_known'), KINDS)

    with op.batch_alter_table('payments') as batch:
        batch.add_column(sa.Column('reflected', sa.Boolean(), server_default=sa.false(),
                                   nullable=False))

    with op.batch_alter_table('invoices') as batch:
        batch.add_column(sa.Column('reminded_here', sa.Boolean(), server_default=sa.false(),
                                   nullable=False))
        batch.add_column(sa.Column('label', sa.String(length=100), nullable=True))
    invoices = sa.table('invoices', sa.column('id'), sa.column('reminded_here', sa.Boolean()))
    sent = sa.table('history', sa.column('invoice_id'), sa.column('event'))
    op.execute(invoices.update().where(invoices.c.id.in_(
        sa.select(sent.c.invoice_id).where(sent.c.event == 'sent',
                                           sent.c.invoice_id.is_not(None))))
        .values(reminded_here=True))


def downgrade() -> None:
    with op.batch_alter_table('invoices') as batch:
        batch.drop_column('label')
        batch.drop_column('reminded_here')
    with op.batch_alter_table('payments') as batch:
        batch.drop_column('reflected')
    with op.batch_alter_table('customers') as batch:
        batch.add_column(sa.Column('is_consumer', sa.Boolean(), server_default=sa.false(),
                                   nullable=False))
    customers = sa.table('customers', sa.column('kind'), sa.column('is_consumer', sa.Boolean()))
    op.execute(customers.update().where(customers.c.kind == 'consumer').values(is_consumer=True))
    with op.batch_alter_table('customers') as batch:
        batch.drop_constraint(op.f('ck_customers_kind_known'), type_='check')
        batch.drop_column('vat_number')
        batch.drop_column('siren')
        batch.drop_column('kind')
