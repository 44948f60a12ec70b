"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-21 08:07:29.624811
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import telehealth.records.types

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", telehealth.records.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.String(length=64), nullable=True),
        sa.Column("actor_role", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("object_type", sa.String(length=32), nullable=True),
        sa.Column("object_id", sa.String(length=64), nullable=True),
        sa.Column("patient_id", sa.Uuid(), nullable=True),
        sa.Column("client_addr", sa.String(length=64), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index("ix_audit_actor_at", ["actor_id", "at"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_events_at"), ["at"], unique=False)
        batch_op.create_index("ix_audit_patient_at", ["patient_id", "at"], unique=False)

    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=128), nullable=False),
        sa.Column(
            "role",
            sa.Enum(
                "admin",
                "clinician",
                "reviewer",
                name="role",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("password_hash", sa.String(length=256), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", telehealth.records.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", telehealth.records.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "patients",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("mrn", sa.String(length=64), nullable=False),
        sa.Column("given_name", sa.String(length=128), nullable=False),
        sa.Column("family_name", sa.String(length=128), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column(
            "affected_side",
            sa.Enum(
                "left",
                "right",
                "bilateral",
                "unknown",
                name="affected_side",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("created_at", telehealth.records.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_patients_created_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patients")),
        sa.UniqueConstraint("mrn", name=op.f("uq_patients_mrn")),
    )
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_patients_family_name"), ["family_name"], unique=False)

    op.create_table(
        "visits",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("clinician_id", sa.Uuid(), nullable=False),
        sa.Column("scheduled_at", telehealth.records.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "scheduled",
                "waiting",
                "in_call",
                "ended",
                "cancelled",
                name="visit_state",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("reason", sa.String(length=256), nullable=True),
        sa.Column("join_token_hash", sa.String(length=64), nullable=True),
        sa.Column("join_expires_at", telehealth.records.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("join_revoked_at", telehealth.records.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("join_requires_dob", sa.Boolean(), nullable=False),
        sa.Column("consent_capture", sa.Boolean(), nullable=True),
        sa.Column("consent_at", telehealth.records.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("consent_by", sa.String(length=128), nullable=True),
        sa.Column("consent_text_version", sa.String(length=32), nullable=True),
        sa.Column("protocol_id", sa.String(length=64), nullable=True),
        sa.Column("protocol_version", sa.String(length=32), nullable=True),
        sa.Column("started_at", telehealth.records.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ended_at", telehealth.records.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cancel_reason", sa.String(length=256), nullable=True),
        sa.Column("created_at", telehealth.records.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["clinician_id"], ["users.id"], name=op.f("fk_visits_clinician_id_users")),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"], name=op.f("fk_visits_patient_id_patients")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_visits")),
        sa.UniqueConstraint("join_token_hash", name=op.f("uq_visits_join_token_hash")),
    )
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_visits_clinician_id"), ["clinician_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_visits_patient_id"), ["patient_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_visits_scheduled_at"), ["scheduled_at"], unique=False)

    op.create_table(
        "auth_sessions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("visit_id", sa.Uuid(), nullable=True),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", telehealth.records.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", telehealth.records.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", telehealth.records.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("client_addr", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_auth_sessions_user_id_users")),
        sa.ForeignKeyConstraint(["visit_id"], ["visits.id"], name=op.f("fk_auth_sessions_visit_id_visits")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_auth_sessions_token_hash")),
    )
    with op.batch_alter_table("auth_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_auth_sessions_user_id"), ["user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_auth_sessions_visit_id"), ["visit_id"], unique=False)

    op.create_table(
        "captures",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("visit_id", sa.Uuid(), nullable=False),
        sa.Column("step_id", sa.String(length=64), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "still",
                "clip",
                name="capture_kind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "stored",
                "failed",
                "skipped",
                name="capture_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("supersedes_id", sa.Uuid(), nullable=True),
        sa.Column("skip_reason", sa.String(length=256), nullable=True),
        sa.Column("quality", sa.JSON(), nullable=True),
        sa.Column("created_at", telehealth.records.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_captures_created_by_users")),
        sa.ForeignKeyConstraint(["supersedes_id"], ["captures.id"], name=op.f("fk_captures_supersedes_id_captures")),
        sa.ForeignKeyConstraint(["visit_id"], ["visits.id"], name=op.f("fk_captures_visit_id_visits")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_captures")),
    )
    with op.batch_alter_table("captures", schema=None) as batch_op:
        batch_op.create_index("ix_captures_visit_step", ["visit_id", "step_id"], unique=False)

    op.create_table(
        "media_files",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("visit_id", sa.Uuid(), nullable=False),
        sa.Column("capture_id", sa.Uuid(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("content_type", sa.String(length=128), nullable=False),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("frames", sa.Integer(), nullable=True),
        sa.Column("storage_key", sa.String(length=128), nullable=False),
        sa.Column(
            "provenance",
            sa.Enum(
                "device",
                "stream",
                "derived",
                name="provenance",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("is_primary", sa.Boolean(), nullable=False),
        sa.Column("is_thumbnail", sa.Boolean(), nullable=False),
        sa.Column("created_at", telehealth.records.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(["capture_id"], ["captures.id"], name=op.f("fk_media_files_capture_id_captures")),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_media_files_created_by_users")),
        sa.ForeignKeyConstraint(["visit_id"], ["visits.id"], name=op.f("fk_media_files_visit_id_visits")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_media_files")),
    )
    with op.batch_alter_table("media_files", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_media_files_capture_id"), ["capture_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_media_files_sha256"), ["sha256"], unique=False)
        batch_op.create_index(batch_op.f("ix_media_files_visit_id"), ["visit_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("media_files", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_media_files_visit_id"))
        batch_op.drop_index(batch_op.f("ix_media_files_sha256"))
        batch_op.drop_index(batch_op.f("ix_media_files_capture_id"))

    op.drop_table("media_files")
    with op.batch_alter_table("captures", schema=None) as batch_op:
        batch_op.drop_index("ix_captures_visit_step")

    op.drop_table("captures")
    with op.batch_alter_table("auth_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_auth_sessions_visit_id"))
        batch_op.drop_index(batch_op.f("ix_auth_sessions_user_id"))

    op.drop_table("auth_sessions")
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_visits_scheduled_at"))
        batch_op.drop_index(batch_op.f("ix_visits_patient_id"))
        batch_op.drop_index(batch_op.f("ix_visits_clinician_id"))

    op.drop_table("visits")
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_patients_family_name"))

    op.drop_table("patients")
    op.drop_table("users")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_patient_at")
        batch_op.drop_index(batch_op.f("ix_audit_events_at"))
        batch_op.drop_index("ix_audit_actor_at")

    op.drop_table("audit_events")
