"""measurements: face landmarks and metrics per stored still (history kept per model version)

Revision ID: 0004
Revises: 0002
Create Date: 2026-12-03 17:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import telehealth.records.types

revision: str = "0004"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "measurements",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("media_id", sa.Uuid(), nullable=False),
        sa.Column("visit_id", sa.Uuid(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "ok",
                "no_face",
                "several_faces",
                "error",
                name="measurement_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("model_version", sa.String(length=32), nullable=False),
        sa.Column("code_version", sa.String(length=16), nullable=False),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("landmarks", sa.LargeBinary(), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=True),
        sa.Column("error", sa.String(length=256), nullable=True),
        sa.Column("decode_ms", sa.Float(), nullable=False),
        sa.Column("detect_ms", sa.Float(), nullable=False),
        sa.Column("total_ms", sa.Float(), nullable=False),
        sa.Column("created_at", telehealth.records.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["media_id"], ["media_files.id"], name=op.f("fk_measurements_media_id_media_files")),
        sa.ForeignKeyConstraint(["visit_id"], ["visits.id"], name=op.f("fk_measurements_visit_id_visits")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_measurements")),
    )
    with op.batch_alter_table("measurements", schema=None) as batch_op:
        batch_op.create_index("ix_measurements_media_at", ["media_id", "created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_measurements_visit_id"), ["visit_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("measurements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_measurements_visit_id"))
        batch_op.drop_index("ix_measurements_media_at")
    op.drop_table("measurements")
