"""review: grades (append-only, so also their history) and capture notes

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import telehealth.records.types

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "grades",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("visit_id", sa.Uuid(), nullable=False),
        sa.Column(
            "scale",
            sa.Enum(
                "house_brackmann",
                "sunnybrook",
                "eface",
                name="grading_scale",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("scores", sa.JSON(), nullable=False),
        sa.Column("created_at", telehealth.records.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_grades_created_by_users")),
        sa.ForeignKeyConstraint(["visit_id"], ["visits.id"], name=op.f("fk_grades_visit_id_visits")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grades")),
    )
    with op.batch_alter_table("grades", schema=None) as batch_op:
        batch_op.create_index("ix_grades_visit_scale_at", ["visit_id", "scale", "created_at"], unique=False)

    op.create_table(
        "capture_notes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("capture_id", sa.Uuid(), nullable=False),
        sa.Column("visit_id", sa.Uuid(), nullable=False),
        sa.Column("text", sa.String(length=2000), nullable=False),
        sa.Column("created_at", telehealth.records.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["capture_id"], ["captures.id"], name=op.f("fk_capture_notes_capture_id_captures")),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_capture_notes_created_by_users")),
        sa.ForeignKeyConstraint(["visit_id"], ["visits.id"], name=op.f("fk_capture_notes_visit_id_visits")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_capture_notes")),
    )
    with op.batch_alter_table("capture_notes", schema=None) as batch_op:
        batch_op.create_index("ix_capture_notes_capture_at", ["capture_id", "created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_capture_notes_visit_id"), ["visit_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("capture_notes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_capture_notes_visit_id"))
        batch_op.drop_index("ix_capture_notes_capture_at")
    op.drop_table("capture_notes")
    with op.batch_alter_table("grades", schema=None) as batch_op:
        batch_op.drop_index("ix_grades_visit_scale_at")
    op.drop_table("grades")
