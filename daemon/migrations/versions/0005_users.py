"""web accounts: the people who log in to the web screen, and the API's tokens

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 14:00:00

New tables ``users`` (a name, a role among lecture, gestion, envoi and
admin, an argon2 hash of the password, disabled or not) and
``api_tokens`` (a name, a role, the SHA-256 of the token, when it was
revoked).  Existing rows are untouched; nobody may log in until
``relances user add`` creates an account.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
ROLE_KNOWN = "role IN ('lecture', 'gestion', 'envoi', 'admin')"


def upgrade() -> None:
    op.create_table(
        'users',
        sa.Column('id', Id, nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('password_hash', sa.String(length=200), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('disabled', sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.CheckConstraint(ROLE_KNOWN, name=op.f('ck_users_role_known')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
        sa.UniqueConstraint('name', name=op.f('uq_users_name')),
    )
    op.create_table(
        'api_tokens',
        sa.Column('id', Id, nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('token_sha256', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(ROLE_KNOWN, name=op.f('ck_api_tokens_role_known')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
        sa.UniqueConstraint('name', name=op.f('uq_api_tokens_name')),
        sa.UniqueConstraint('token_sha256', name=op.f('uq_api_tokens_token_sha256')),
    )


def downgrade() -> None:
    op.drop_table('api_tokens')
    op.drop_table('users')
