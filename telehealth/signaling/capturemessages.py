"""Capture-protocol messages: the clinician drives the patient's page; the patient reports uploads.

The relayed ones go between admitted participants (the server adds nothing but the sender's id),
each limited to the role that may send it and the role it may go to: an interpreter, relative or
colleague in the call neither drives the protocol nor sees it. `capture_changed` is the server's
own: it tells the visit's clinicians that the capture changed, on whichever process they are
connected to.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, StringConstraints

from telehealth.signaling.messages import BOTH, Direction, Id, Message, Text, register

_CLINICIAN = frozenset({"clinician"})
_PATIENT = frozenset({"patient"})
StepId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")]
Uuid = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$")]


@register(BOTH | Direction.BUS, relay=True)
class CaptureStart(Message):
    """Clinician -> patient: open the camera stream to the server; the protocol begins."""

    SENDERS: ClassVar[frozenset[str] | None] = _CLINICIAN
    TARGETS: ClassVar[frozenset[str] | None] = _PATIENT
    type: Literal["capture_start"] = "capture_start"
    peer: Id | None = None


@register(BOTH | Direction.BUS, relay=True)
class CaptureStep(Message):
    """Clinician -> patient: show this instruction (and the face oval); record the step."""

    SENDERS: ClassVar[frozenset[str] | None] = _CLINICIAN
    TARGETS: ClassVar[frozenset[str] | None] = _PATIENT
    type: Literal["capture_step"] = "capture_step"
    peer: Id | None = None
    step_id: StepId
    instruction: Annotated[str, StringConstraints(min_length=1, max_length=300)]
    index: Annotated[int, Field(ge=1, le=100)]
    total: Annotated[int, Field(ge=1, le=100)]


@register(BOTH | Direction.BUS, relay=True)
class CaptureCountdown(Message):
    """Clinician -> patient: count down `seconds` on screen; the capture follows when it reaches zero."""

    SENDERS: ClassVar[frozenset[str] | None] = _CLINICIAN
    TARGETS: ClassVar[frozenset[str] | None] = _PATIENT
    type: Literal["capture_countdown"] = "capture_countdown"
    peer: Id | None = None
    step_id: StepId
    seconds: Annotated[int, Field(ge=1, le=5)] = 3


@register(BOTH | Direction.BUS, relay=True)
class CaptureTake(Message):
    """Clinician -> patient: the click; grab the full-resolution still now, end the clip after post-roll."""

    SENDERS: ClassVar[frozenset[str] | None] = _CLINICIAN
    TARGETS: ClassVar[frozenset[str] | None] = _PATIENT
    type: Literal["capture_take"] = "capture_take"
    peer: Id | None = None
    step_id: StepId
    take_id: Uuid
    post_roll_ms: Annotated[int, Field(ge=0, le=10_000)] = 1500
    wants_still: bool = True
    wants_clip: bool = True
    # How long ago the click was when this copy was sent: a re-sent take arrives late, and a
    # device frame grabbed seconds after the click would show a different moment.
    age_ms: Annotated[int, Field(ge=0, le=3_600_000)] = 0


@register(BOTH | Direction.BUS, relay=True)
class CaptureIds(Message):
    """Clinician -> patient: the record ids the device's files of a take upload to."""

    SENDERS: ClassVar[frozenset[str] | None] = _CLINICIAN
    TARGETS: ClassVar[frozenset[str] | None] = _PATIENT
    type: Literal["capture_ids"] = "capture_ids"
    peer: Id | None = None
    take_id: Uuid
    still_capture_id: Uuid | None = None
    clip_capture_id: Uuid | None = None


@register(BOTH | Direction.BUS, relay=True)
class CaptureAck(Message):
    """Patient -> clinician: a take command (`part: take`) or its record ids (`part: ids`) arrived.

    The clinician's page re-sends both parts of a take until each is acknowledged, because the
    hub drops relayed messages to a participant between two connections.
    """

    SENDERS: ClassVar[frozenset[str] | None] = _PATIENT
    TARGETS: ClassVar[frozenset[str] | None] = _CLINICIAN
    type: Literal["capture_ack"] = "capture_ack"
    peer: Id | None = None
    take_id: Uuid
    part: Literal["take", "ids"]


@register(BOTH | Direction.BUS, relay=True)
class CaptureEnd(Message):
    """Clinician -> patient: the protocol is over; close the stream, hide the instruction."""

    SENDERS: ClassVar[frozenset[str] | None] = _CLINICIAN
    TARGETS: ClassVar[frozenset[str] | None] = _PATIENT
    type: Literal["capture_end"] = "capture_end"
    peer: Id | None = None


@register(BOTH | Direction.BUS, relay=True)
class UploadProgress(Message):
    """Patient -> clinician: where a device upload stands."""

    SENDERS: ClassVar[frozenset[str] | None] = _PATIENT
    TARGETS: ClassVar[frozenset[str] | None] = _CLINICIAN
    type: Literal["upload_progress"] = "upload_progress"
    peer: Id | None = None
    capture_id: Uuid
    kind: Literal["still", "clip"]
    state: Literal["queued", "uploading", "retrying", "stored", "failed"]
    percent: Annotated[int, Field(ge=0, le=100)] = 0
    error: Text | None = None


@register(Direction.SERVER | Direction.BUS)
class CaptureChanged(Message):
    """Server -> the visit's clinicians: its capture changed; read `GET /api/visits/{id}/capture` once.

    `reason` says what happened (`take`, `skip`, `clip_stored`, `upload_stored`, `peer_state`...);
    new reasons may appear, and a client treats any of them as "something changed".
    """

    type: Literal["capture_changed"] = "capture_changed"
    visit_id: Id
    reason: Annotated[str, StringConstraints(min_length=1, max_length=40, pattern=r"^[a-z_]+$")]
