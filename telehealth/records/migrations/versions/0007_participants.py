"""participants: third-participant invite links, who joined each call in which role, kept chat

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 17:35:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import telehealth.records.types

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "chat_messages",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("visit_id", sa.Uuid(), nullable=False),
        sa.Column("participant_id", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("display_name", sa.String(length=120), nullable=False),
        sa.Column("text", sa.String(length=4096), nullable=False),
        sa.Column("created_at", telehealth.records.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["visit_id"], ["visits.id"], name=op.f("fk_chat_messages_visit_id_visits")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_messages")),
    )
    with op.batch_alter_table("chat_messages", schema=None) as batch_op:
        batch_op.create_index("ix_chat_messages_visit_at", ["visit_id", "created_at"], unique=False)

    op.create_table(
        "visit_invites",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("visit_id", sa.Uuid(), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("display_name", sa.String(length=120), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", telehealth.records.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", telehealth.records.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", telehealth.records.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_visit_invites_created_by_users")),
        sa.ForeignKeyConstraint(["visit_id"], ["visits.id"], name=op.f("fk_visit_invites_visit_id_visits")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_visit_invites")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_visit_invites_token_hash")),
    )
    with op.batch_alter_table("visit_invites", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_visit_invites_visit_id"), ["visit_id"], unique=False)

    op.create_table(
        "visit_participants",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("visit_id", sa.Uuid(), nullable=False),
        sa.Column("participant_id", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("display_name", sa.String(length=120), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("invite_id", sa.Uuid(), nullable=True),
        sa.Column("joined_at", telehealth.records.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("admitted_at", telehealth.records.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("removed_at", telehealth.records.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["invite_id"], ["visit_invites.id"], name=op.f("fk_visit_participants_invite_id_visit_invites")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_visit_participants_user_id_users")),
        sa.ForeignKeyConstraint(["visit_id"], ["visits.id"], name=op.f("fk_visit_participants_visit_id_visits")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_visit_participants")),
    )
    with op.batch_alter_table("visit_participants", schema=None) as batch_op:
        batch_op.create_index("ix_visit_participants_visit_pid", ["visit_id", "participant_id"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("visit_participants", schema=None) as batch_op:
        batch_op.drop_index("ix_visit_participants_visit_pid")

    op.drop_table("visit_participants")
    with op.batch_alter_table("visit_invites", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_visit_invites_visit_id"))

    op.drop_table("visit_invites")
    with op.batch_alter_table("chat_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_chat_messages_visit_at")

    op.drop_table("chat_messages")
