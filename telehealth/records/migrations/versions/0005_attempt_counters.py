"""attempt counters: sign-in and join-link attempts reserved atomically per account, client and link

The per-account count moves from users.failed_logins/locked_until into attempt_counters, keyed by
the username tried, so an unknown name is counted (and answered) exactly like a real one.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 17:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import telehealth.records.types

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "attempt_counters",
        sa.Column("key", sa.String(length=160), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("locked_until", telehealth.records.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_attempt_at", telehealth.records.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_attempt_counters")),
    )
    op.create_index(op.f("ix_attempt_counters_last_attempt_at"), "attempt_counters", ["last_attempt_at"], unique=False)
    with op.batch_alter_table("users") as batch:
        batch.drop_column("failed_logins")
        batch.drop_column("locked_until")


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("locked_until", telehealth.records.types.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0"))
    op.drop_index(op.f("ix_attempt_counters_last_attempt_at"), table_name="attempt_counters")
    op.drop_table("attempt_counters")
