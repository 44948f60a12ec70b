"""capture working state: which process holds a visit's capture peer; takes whose device copy is missing

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 17:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import telehealth.records.types

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.add_column(sa.Column("capture_instance", sa.String(length=64), nullable=True))
    with op.batch_alter_table("captures", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("device_missing_at", telehealth.records.types.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("captures", schema=None) as batch_op:
        batch_op.drop_column("device_missing_at")
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.drop_column("capture_instance")
