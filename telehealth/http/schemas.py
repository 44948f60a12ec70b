"""Request and response bodies of the REST API (also the source of the OpenAPI document)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, NaiveDatetime, StringConstraints

from telehealth.records.models import AffectedSide, Role, User, Visit, VisitState
from telehealth.records.review import PatientBrief

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
Mrn = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$"),
]


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamp needs a time zone, e.g. 2026-11-21T09:30:00Z")
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]


def _born(value: date) -> date:
    if value > date.today() or value.year < 1880:
        raise ValueError("date of birth must be a real past date")
    return value


BirthDate = Annotated[date, AfterValidator(_born)]


class In(BaseModel):
    """Base for request bodies: unknown fields are errors, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class LoginIn(In):
    username: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=256)]


class MeOut(BaseModel):
    role: str
    user_id: uuid.UUID | None
    display_name: str
    csrf_token: str
    visit_id: uuid.UUID | None = None


class PatientIn(In):
    mrn: Mrn
    given_name: Name
    family_name: Name
    birth_date: BirthDate
    affected_side: AffectedSide = AffectedSide.UNKNOWN


class PatientPatch(In):
    mrn: Mrn | None = None
    given_name: Name | None = None
    family_name: Name | None = None
    birth_date: BirthDate | None = None
    affected_side: AffectedSide | None = None


class PatientOut(PatientBrief):
    created_at: datetime


class PatientList(BaseModel):
    items: list[PatientOut]


class PatientQuery(In):
    q: Annotated[str, StringConstraints(max_length=128)] = ""
    limit: Annotated[int, Field(ge=1, le=200)] = 50


class VisitIn(In):
    patient_id: uuid.UUID
    # Either an exact instant, or a wall-clock time in the clinic's zone (TELEHEALTH_CLINIC_TZ).
    scheduled_at: AwareDatetime | None = None
    scheduled_local: NaiveDatetime | None = None
    clinician_id: uuid.UUID | None = None
    reason: Annotated[str, StringConstraints(max_length=256)] | None = None
    requires_dob: bool = False


class VisitPatch(In):
    scheduled_at: AwareDatetime | None = None
    scheduled_local: NaiveDatetime | None = None
    clinician_id: uuid.UUID | None = None
    reason: Annotated[str, StringConstraints(max_length=256)] | None = None
    requires_dob: bool | None = None


class CancelIn(In):
    reason: Annotated[str, StringConstraints(max_length=256)] = ""


class PersonRef(BaseModel):
    id: uuid.UUID
    display_name: str


class VisitOut(BaseModel):
    id: uuid.UUID
    patient: PatientOut
    clinician: PersonRef
    scheduled_at: datetime
    state: VisitState
    reason: str | None
    join_link_active: bool
    join_expires_at: datetime | None
    requires_dob: bool
    consent_capture: bool | None
    consent_at: datetime | None
    protocol_id: str | None
    started_at: datetime | None
    ended_at: datetime | None
    cancel_reason: str | None = None

    @classmethod
    def of(cls, v: Visit) -> VisitOut:
        """Serialize a visit row with patient and clinician loaded."""
        return cls(
            id=v.id,
            patient=PatientOut.of(v.patient),
            clinician=PersonRef(id=v.clinician.id, display_name=v.clinician.display_name),
            scheduled_at=v.scheduled_at,
            state=v.state,
            reason=v.reason,
            join_link_active=v.join_token_hash is not None and v.join_revoked_at is None,
            join_expires_at=v.join_expires_at,
            requires_dob=v.join_requires_dob,
            consent_capture=v.consent_capture,
            consent_at=v.consent_at,
            protocol_id=v.protocol_id,
            started_at=v.started_at,
            ended_at=v.ended_at,
            cancel_reason=v.cancel_reason,
        )


class VisitList(BaseModel):
    items: list[VisitOut]
    # The window listed (UTC) and the clinic's time zone the dashboard shows times in.
    start: datetime | None = None
    end: datetime | None = None
    time_zone: str = "UTC"


class VisitQuery(In):
    day: date | None = None
    mine: bool = False
    patient_id: uuid.UUID | None = None
    # Without an offset, days and weeks are the clinic's (TELEHEALTH_CLINIC_TZ).
    tz_offset_minutes: Annotated[int, Field(ge=-900, le=900)] | None = None
    span: Literal["day", "week"] = "day"


class JoinLinkOut(BaseModel):
    url: str
    token: str
    expires_at: datetime


class JoinInfoOut(BaseModel):
    clinician_name: str
    scheduled_at: datetime
    requires_dob: bool
    consent_text: str
    consent_version: str
    state: VisitState


class JoinSessionIn(In):
    birth_date: date | None = None


class PatientSessionOut(BaseModel):
    token: str
    visit_id: uuid.UUID
    csrf_token: str


class ConsentIn(In):
    capture: bool
    consent_version: Annotated[str, StringConstraints(max_length=32)]
    signed_name: Name


class PatientVisitOut(BaseModel):
    visit_id: uuid.UUID
    clinician_name: str
    scheduled_at: datetime
    state: VisitState
    consent_capture: bool | None


class UserIn(In):
    username: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    display_name: Name
    role: Role
    password: Annotated[str, StringConstraints(min_length=10, max_length=256)]


class UserOut(BaseModel):
    id: uuid.UUID
    username: str
    display_name: str
    role: Role
    disabled: bool

    @classmethod
    def of(cls, u: User) -> UserOut:
        """Serialize a user row (the model has no hash field, so the hash is never read)."""
        return cls.model_validate(u, from_attributes=True)


class UserList(BaseModel):
    items: list[UserOut]


class AuditQuery(In):
    patient_id: uuid.UUID | None = None
    actor_id: Annotated[str, StringConstraints(max_length=64)] | None = None
    limit: Annotated[int, Field(ge=1, le=500)] = 100


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor_id: str | None
    actor_role: str
    action: str
    object_type: str | None
    object_id: str | None
    patient_id: uuid.UUID | None
    client_addr: str | None
    outcome: str


class AuditList(BaseModel):
    items: list[AuditOut]


class Health(BaseModel):
    status: Literal["ok", "unavailable"]


class ErrorOut(BaseModel):
    class Body(BaseModel):
        code: str
        message: str
        details: object | None = None

    error: Body


class InvitationIn(In):
    # Deliberately loose (the mail server has the last word); no display names, no line breaks.
    email: Annotated[
        str, StringConstraints(strip_whitespace=True, max_length=320, pattern=r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")
    ]


class RunningLateIn(In):
    minutes: Annotated[int, Field(ge=1, le=180)] = 10


class MessageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: str
    channel: str
    recipient: str
    due_at: datetime
    sent_at: datetime | None
    outcome: str
    error: str | None
    created_at: datetime


class MessageList(BaseModel):
    items: list[MessageOut]


InviteRole = Literal["interpreter", "family", "colleague"]


class InviteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: InviteRole
    display_name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]


class InviteOut(BaseModel):
    id: uuid.UUID
    role: str
    display_name: str
    expires_at: datetime
    revoked: bool
    created_at: datetime
    url: str | None = None  # only when just issued: the token is never stored


class ParticipantOut(BaseModel):
    participant_id: str
    role: str
    display_name: str
    joined_at: datetime
    admitted_at: datetime | None
    removed_at: datetime | None


class ChatLineOut(BaseModel):
    participant_id: str
    role: str
    display_name: str
    text: str
    created_at: datetime


class RosterOut(BaseModel):
    invites: list[InviteOut]
    participants: list[ParticipantOut]
    chat: list[ChatLineOut]


class InviteInfoOut(BaseModel):
    visit_id: uuid.UUID
    clinician_name: str
    scheduled_at: datetime
    role: str
    display_name: str
    state: VisitState
