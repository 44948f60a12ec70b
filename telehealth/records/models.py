"""SQLAlchemy 2.0 models: the clinical record and its audit trail."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Uuid,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from telehealth.records.types import UTCDateTime, utcnow


class Base(DeclarativeBase):
    """Declarative base with a naming convention so migrations name constraints stably."""

    type_annotation_map = {datetime: UTCDateTime()}


Base.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    """A portable string enum column checked by the database."""
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        validate_strings=True,
        length=32,
        values_callable=lambda e: [m.value for m in e],
    )


class Role(enum.StrEnum):
    """Staff roles; patients are not users, they hold a visit-bound token."""

    ADMIN = "admin"
    CLINICIAN = "clinician"
    REVIEWER = "reviewer"


class AffectedSide(enum.StrEnum):
    """Side of the facial palsy, from the patient's own point of view."""

    LEFT = "left"
    RIGHT = "right"
    BILATERAL = "bilateral"
    UNKNOWN = "unknown"


class VisitState(enum.StrEnum):
    """Lifecycle of a video visit."""

    SCHEDULED = "scheduled"
    WAITING = "waiting"
    IN_CALL = "in_call"
    ENDED = "ended"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"  # the patient never came


class CaptureKind(enum.StrEnum):
    """What a protocol step yields."""

    STILL = "still"
    CLIP = "clip"


class CaptureStatus(enum.StrEnum):
    """Where a capture stands; superseded takes are kept, never deleted."""

    PENDING = "pending"
    STORED = "stored"
    FAILED = "failed"
    SKIPPED = "skipped"


class Provenance(enum.StrEnum):
    """Which path produced a media file."""

    DEVICE = "device"
    STREAM = "stream"
    DERIVED = "derived"


class User(Base):
    """A staff account."""

    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128))
    role: Mapped[Role] = mapped_column(_enum(Role, "role"))
    password_hash: Mapped[str] = mapped_column(String(256))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AttemptCounter(Base):
    """Attempts per key (account, client address, join link), reserved before each check."""

    __tablename__ = "attempt_counters"

    key: Mapped[str] = mapped_column(String(160), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    locked_until: Mapped[datetime | None] = mapped_column(default=None)
    last_attempt_at: Mapped[datetime] = mapped_column(index=True)


class AuthSession(Base):
    """A server-side session: staff (cookie) or patient (bearer, bound to one visit)."""

    __tablename__ = "auth_sessions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"), index=True)
    visit_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("visits.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    client_addr: Mapped[str | None] = mapped_column(String(64))

    user: Mapped[User | None] = relationship(lazy="raise")


class Patient(Base):
    """A patient of the clinic."""

    __tablename__ = "patients"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    mrn: Mapped[str] = mapped_column(String(64), unique=True)
    given_name: Mapped[str] = mapped_column(String(128))
    family_name: Mapped[str] = mapped_column(String(128), index=True)
    birth_date: Mapped[date] = mapped_column(Date)
    affected_side: Mapped[AffectedSide] = mapped_column(_enum(AffectedSide, "affected_side"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))


class Visit(Base):
    """A scheduled video visit; state changes only through visits.transition()."""

    __tablename__ = "visits"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"), index=True)
    clinician_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    scheduled_at: Mapped[datetime] = mapped_column(index=True)
    state: Mapped[VisitState] = mapped_column(_enum(VisitState, "visit_state"), default=VisitState.SCHEDULED)
    reason: Mapped[str | None] = mapped_column(String(256))
    join_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    join_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    join_revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    join_requires_dob: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_capture: Mapped[bool | None] = mapped_column(Boolean, default=None)
    consent_at: Mapped[datetime | None] = mapped_column(default=None)
    consent_by: Mapped[str | None] = mapped_column(String(128))
    consent_text_version: Mapped[str | None] = mapped_column(String(32))
    protocol_id: Mapped[str | None] = mapped_column(String(64))
    protocol_version: Mapped[str | None] = mapped_column(String(32))
    # Working state, not history: the server process that answered the latest capture peer.
    capture_instance: Mapped[str | None] = mapped_column(String(64), default=None)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    ended_at: Mapped[datetime | None] = mapped_column(default=None)
    cancel_reason: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    patient: Mapped[Patient] = relationship(lazy="raise")
    clinician: Mapped[User] = relationship(lazy="raise")


class Capture(Base):
    """One take of one protocol step; a retake points at the take it supersedes."""

    __tablename__ = "captures"
    __table_args__ = (Index("ix_captures_visit_step", "visit_id", "step_id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    visit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("visits.id"))
    step_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[CaptureKind] = mapped_column(_enum(CaptureKind, "capture_kind"))
    status: Mapped[CaptureStatus] = mapped_column(_enum(CaptureStatus, "capture_status"), default=CaptureStatus.PENDING)
    supersedes_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("captures.id"))
    skip_reason: Mapped[str | None] = mapped_column(String(256))
    quality: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    # Set when the patient's device copy did not arrive in time; the stream copy stays primary.
    device_missing_at: Mapped[datetime | None] = mapped_column(default=None)


class MediaFile(Base):
    """A stored file: content-addressed bytes plus what they are and where they came from."""

    __tablename__ = "media_files"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    visit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("visits.id"), index=True)
    capture_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("captures.id"), index=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(128))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    frames: Mapped[int | None] = mapped_column(Integer)
    storage_key: Mapped[str] = mapped_column(String(128))
    provenance: Mapped[Provenance] = mapped_column(_enum(Provenance, "provenance"))
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)
    is_thumbnail: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))


class AuditEvent(Base):
    """Who did what to which record, when, from where, and whether it was allowed."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_patient_at", "patient_id", "at"),
        Index("ix_audit_actor_at", "actor_id", "at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[str | None] = mapped_column(String(64))
    actor_role: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str | None] = mapped_column(String(32))
    object_id: Mapped[str | None] = mapped_column(String(64))
    patient_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    client_addr: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)


class GradingScale(enum.StrEnum):
    """Facial nerve grading systems a clinician can record for a visit."""

    HOUSE_BRACKMANN = "house_brackmann"
    SUNNYBROOK = "sunnybrook"
    EFACE = "eface"


class Grade(Base):
    """One grading of a visit on one scale; append-only, so the rows are the history."""

    __tablename__ = "grades"
    __table_args__ = (Index("ix_grades_visit_scale_at", "visit_id", "scale", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    visit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("visits.id"))
    scale: Mapped[GradingScale] = mapped_column(_enum(GradingScale, "grading_scale"))
    items: Mapped[dict[str, Any]] = mapped_column(JSON)
    scores: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))


class CaptureNote(Base):
    """A reviewer's or clinician's free-text note on one capture (append-only)."""

    __tablename__ = "capture_notes"
    __table_args__ = (Index("ix_capture_notes_capture_at", "capture_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    capture_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("captures.id"))
    visit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("visits.id"), index=True)
    text: Mapped[str] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))


class MeasurementStatus(enum.StrEnum):
    """Outcome of measuring a still; a still without a usable face is flagged, not an error."""

    OK = "ok"
    NO_FACE = "no_face"
    SEVERAL_FACES = "several_faces"
    ERROR = "error"


class Measurement(Base):
    """Face landmarks and metrics of one stored still by one model version; re-measuring adds a row."""

    __tablename__ = "measurements"
    __table_args__ = (Index("ix_measurements_media_at", "media_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    media_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("media_files.id"))
    visit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("visits.id"), index=True)
    status: Mapped[MeasurementStatus] = mapped_column(_enum(MeasurementStatus, "measurement_status"))
    model: Mapped[str] = mapped_column(String(64))
    model_version: Mapped[str] = mapped_column(String(32))
    code_version: Mapped[str] = mapped_column(String(16))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    # zlib-compressed little-endian float32 (478 x 3: x, y px; z scaled like x): about 5 KB a still.
    landmarks: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    error: Mapped[str | None] = mapped_column(String(256))
    decode_ms: Mapped[float] = mapped_column(Float, default=0.0)
    detect_ms: Mapped[float] = mapped_column(Float, default=0.0)
    total_ms: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MessageKind(enum.StrEnum):
    """What an outgoing message to a patient is."""

    INVITATION = "invitation"
    REMINDER = "reminder"
    RUNNING_LATE = "running_late"


class MessageOutcome(enum.StrEnum):
    """Where an outgoing message stands."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"  # the visit ended or its link was replaced before it was due


class OutgoingMessage(Base):
    """A message to a patient about a visit: the durable schedule and the record of what went out.

    It holds no patient data beyond the address it goes to; the join link it carries is stored
    encrypted with the server's key (only hashes of links are kept elsewhere) and erased once sent.
    """

    __tablename__ = "outgoing_messages"
    __table_args__ = (Index("ix_outgoing_messages_due", "outcome", "due_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    visit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("visits.id"), index=True)
    kind: Mapped[MessageKind] = mapped_column(_enum(MessageKind, "message_kind"))
    channel: Mapped[str] = mapped_column(String(16), default="email")
    recipient: Mapped[str] = mapped_column(String(320))
    due_at: Mapped[datetime] = mapped_column()
    sealed_link: Mapped[str | None] = mapped_column(String(512), default=None)
    minutes_late: Mapped[int | None] = mapped_column(Integer, default=None)
    claimed_at: Mapped[datetime | None] = mapped_column(default=None)
    claimed_by: Mapped[str | None] = mapped_column(String(64), default=None)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    outcome: Mapped[MessageOutcome] = mapped_column(
        _enum(MessageOutcome, "message_outcome"), default=MessageOutcome.PENDING
    )
    error: Mapped[str | None] = mapped_column(String(200), default=None)
    created_by: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class VisitInvite(Base):
    """A link that lets one named third participant (interpreter, family, colleague) into one visit."""

    __tablename__ = "visit_invites"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    visit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("visits.id"), index=True)
    role: Mapped[str] = mapped_column(String(32))
    display_name: Mapped[str] = mapped_column(String(120))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))


class VisitParticipant(Base):
    """Someone who joined a visit's call, in which role; one row per participant id."""

    __tablename__ = "visit_participants"
    __table_args__ = (Index("ix_visit_participants_visit_pid", "visit_id", "participant_id", unique=True),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    visit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("visits.id"))
    participant_id: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(32))
    display_name: Mapped[str] = mapped_column(String(120))
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"), default=None)
    invite_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("visit_invites.id"), default=None)
    joined_at: Mapped[datetime] = mapped_column(default=utcnow)
    admitted_at: Mapped[datetime | None] = mapped_column(default=None)
    removed_at: Mapped[datetime | None] = mapped_column(default=None)


class ChatMessage(Base):
    """A chat line kept with the visit record (only when the clinic enables keeping chat)."""

    __tablename__ = "chat_messages"
    __table_args__ = (Index("ix_chat_messages_visit_at", "visit_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    visit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("visits.id"))
    participant_id: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(32))
    display_name: Mapped[str] = mapped_column(String(120))
    text: Mapped[str] = mapped_column(String(4096))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
