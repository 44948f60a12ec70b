"""schedule and messages: the no-show visit state; outgoing messages to patients

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 18:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import telehealth.records.types

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD = ("scheduled", "waiting", "in_call", "ended", "cancelled")
_NEW = (*_OLD, "no_show")


def _check(states: tuple[str, ...]) -> str:
    return "state IN ({})".format(", ".join(f"'{s}'" for s in states))


def _replace(states: tuple[str, ...]) -> None:
    # SQLite cannot alter a CHECK constraint: batch mode rebuilds the table (a no-op copy elsewhere).
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_visits_visit_state"), type_="check")
        batch_op.create_check_constraint(op.f("ck_visits_visit_state"), _check(states))


def upgrade() -> None:
    _replace(_NEW)
    dt = telehealth.records.types.UTCDateTime(timezone=True)
    op.create_table(
        "outgoing_messages",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("visit_id", sa.Uuid(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "invitation",
                "reminder",
                "running_late",
                name="message_kind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("due_at", dt, nullable=False),
        sa.Column("sealed_link", sa.String(length=512), nullable=True),
        sa.Column("minutes_late", sa.Integer(), nullable=True),
        sa.Column("claimed_at", dt, nullable=True),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("sent_at", dt, nullable=True),
        sa.Column(
            "outcome",
            sa.Enum(
                "pending",
                "sent",
                "failed",
                "skipped",
                name="message_outcome",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("error", sa.String(length=200), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        sa.Column("created_at", dt, nullable=False),
        sa.ForeignKeyConstraint(["visit_id"], ["visits.id"], name=op.f("fk_outgoing_messages_visit_id_visits")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outgoing_messages")),
    )
    with op.batch_alter_table("outgoing_messages", schema=None) as batch_op:
        batch_op.create_index("ix_outgoing_messages_due", ["outcome", "due_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_outgoing_messages_visit_id"), ["visit_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outgoing_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outgoing_messages_visit_id"))
        batch_op.drop_index("ix_outgoing_messages_due")
    op.drop_table("outgoing_messages")
    op.execute("UPDATE visits SET state = 'cancelled' WHERE state = 'no_show'")
    _replace(_OLD)
