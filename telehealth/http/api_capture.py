"""Standardized capture API: protocol, the patient's server peer, steps, takes, device uploads.

Views only parse, check the caller's visit, call telehealth.capture.service and serialize.
Routing note for multi-process deployments: see telehealth.capture.service (sticky by visit).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import BaseModel, StringConstraints

from telehealth.capture import CaptureProtocol
from telehealth.capture.service import TakeRecord, TakeResult
from telehealth.http.access import CARE_TEAM, PATIENT, REVIEWER, actor, allow, principal
from telehealth.http.api_patients import path_uuid
from telehealth.http.jsonio import ok, parse_body
from telehealth.http.openapi import doc
from telehealth.http.schemas import In
from telehealth.keys import CAPTURE
from telehealth.records.errors import RecordNotFound
from telehealth.records.models import MediaFile

routes = web.RouteTableDef()

MAX_SDP = 32 * 1024


class StartIn(In):
    protocol_id: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None


class StepOut(BaseModel):
    id: str
    instruction: str
    still: bool
    clip: bool
    clip_seconds: float
    optional: bool


class ProtocolOut(BaseModel):
    id: str
    version: int
    title: str
    steps: list[StepOut]

    @classmethod
    def of(cls, p: CaptureProtocol) -> ProtocolOut:
        """Serialize a protocol."""
        steps = [
            StepOut(
                id=s.id,
                instruction=s.instruction,
                still=s.still,
                clip=s.clip,
                clip_seconds=s.clip_seconds,
                optional=s.optional,
            )
            for s in p.steps
        ]
        return cls(id=p.id, version=p.version, title=p.title, steps=steps)


class StartOut(BaseModel):
    protocol: ProtocolOut
    visit_id: uuid.UUID


class SdpIn(In):
    sdp: Annotated[str, StringConstraints(min_length=1, max_length=MAX_SDP)]


class SdpOut(BaseModel):
    sdp: str


class BeginOut(BaseModel):
    step_id: str
    started_at: datetime


class MediaOut(BaseModel):
    id: uuid.UUID
    url: str
    provenance: str
    content_type: str
    is_primary: bool
    is_thumbnail: bool
    width: int | None
    height: int | None
    duration_ms: int | None
    sha256: str
    size: int

    @classmethod
    def of(cls, m: MediaFile) -> MediaOut:
        """Serialize a media row (its bytes are served by GET /api/media/{id})."""
        return cls(
            id=m.id,
            url=f"/api/media/{m.id}",
            provenance=m.provenance.value,
            content_type=m.content_type,
            is_primary=m.is_primary,
            is_thumbnail=m.is_thumbnail,
            width=m.width,
            height=m.height,
            duration_ms=m.duration_ms,
            sha256=m.sha256,
            size=m.size,
        )


class TakeOut(BaseModel):
    capture_id: uuid.UUID
    kind: Literal["still", "clip"]
    status: Literal["pending", "stored", "failed", "skipped"]
    media: list[MediaOut]
    quality: dict[str, Any] | None

    @classmethod
    def of(cls, t: TakeRecord | None) -> TakeOut | None:
        """Serialize a take (None stays None)."""
        if t is None:
            return None
        c = t.capture
        return cls(
            capture_id=c.id,
            kind=c.kind.value,
            status=c.status.value,
            media=[MediaOut.of(m) for m in t.media],
            quality=c.quality,
        )


class TakeResultOut(BaseModel):
    step_id: str
    still: TakeOut | None
    clip: TakeOut | None

    @classmethod
    def of(cls, r: TakeResult) -> TakeResultOut:
        """Serialize what a take or skip created."""
        return cls(step_id=r.step_id, still=TakeOut.of(r.still), clip=TakeOut.of(r.clip))


class SkipIn(In):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]


class TakeStatusOut(BaseModel):
    capture_id: uuid.UUID
    kind: Literal["still", "clip"]
    status: Literal["pending", "stored", "failed", "skipped"]
    superseded: bool
    skip_reason: str | None
    created_at: datetime
    quality: dict[str, Any] | None
    media: list[MediaOut]


class StepStatusOut(BaseModel):
    id: str
    instruction: str
    takes: list[TakeStatusOut]


class CaptureStatusOut(BaseModel):
    protocol: ProtocolOut | None
    peer: Literal["none", "connecting", "receiving", "closed"]
    current_step: str | None
    steps: list[StepStatusOut]
    complete: bool


def _visit_id(request: web.Request) -> uuid.UUID:
    """The path's visit; a patient may only name their own (anything else is not found)."""
    vid = path_uuid(request, "visit_id")
    p = principal(request)
    if p.role == PATIENT and p.visit_id != vid:
        raise RecordNotFound("visit not found")
    return vid


def _user_id(request: web.Request) -> uuid.UUID | None:
    return principal(request).user_id


@routes.post("/api/visits/{visit_id}/capture/start")
@doc("Start standardized capture with a protocol (default if none named)", body=StartIn, response=StartOut)
@allow(*CARE_TEAM)
async def start(request: web.Request) -> web.Response:
    """Record the protocol on the visit and return its steps."""
    vid = _visit_id(request)
    body = await parse_body(request, StartIn)
    protocol = await request.app[CAPTURE].start(vid, body.protocol_id, actor(request))
    return ok(StartOut(protocol=ProtocolOut.of(protocol), visit_id=vid))


@routes.post("/api/visits/{visit_id}/capture/peer")
@doc("Patient: offer the camera to the server's capture peer; returns the answer", body=SdpIn, response=SdpOut)
@allow(PATIENT)
async def peer(request: web.Request) -> web.Response:
    """Create (or replace) the visit's server capture peer."""
    vid = _visit_id(request)
    body = await parse_body(request, SdpIn)
    return ok(SdpOut(sdp=await request.app[CAPTURE].connect(vid, body.sdp, actor(request))))


@routes.post("/api/visits/{visit_id}/capture/steps/{step_id}/begin")
@doc("Begin a step: its capture window starts now", response=BeginOut)
@allow(*CARE_TEAM)
async def begin(request: web.Request) -> web.Response:
    """Mark the step start on the patient's stream."""
    vid = _visit_id(request)
    mark = await request.app[CAPTURE].begin(vid, request.match_info["step_id"])
    return ok(BeginOut(step_id=mark.step_id, started_at=mark.started_at))


@routes.post("/api/visits/{visit_id}/capture/steps/{step_id}/take")
@doc("Take a step: still stored now, clip after a post-roll", response=TakeResultOut)
@allow(*CARE_TEAM)
async def take(request: web.Request) -> web.Response:
    """A take (a retake supersedes the previous take)."""
    vid = _visit_id(request)
    result = await request.app[CAPTURE].take(vid, request.match_info["step_id"], actor(request), _user_id(request))
    return ok(TakeResultOut.of(result))


@routes.post("/api/visits/{visit_id}/capture/steps/{step_id}/skip")
@doc("Skip a step, with the reason", body=SkipIn, response=TakeResultOut)
@allow(*CARE_TEAM)
async def skip(request: web.Request) -> web.Response:
    """Record a skipped step."""
    vid = _visit_id(request)
    body = await parse_body(request, SkipIn)
    service = request.app[CAPTURE]
    result = await service.skip(vid, request.match_info["step_id"], body.reason, actor(request), _user_id(request))
    return ok(TakeResultOut.of(result))


@routes.get("/api/visits/{visit_id}/capture")
@doc("Where the visit's capture stands: protocol, peer, every take of every step", response=CaptureStatusOut)
@allow(*CARE_TEAM, REVIEWER, PATIENT)
async def status(request: web.Request) -> web.Response:
    """Capture progress of the visit."""
    o = await request.app[CAPTURE].overview(_visit_id(request))
    steps = [
        StepStatusOut(
            id=s.step.id,
            instruction=s.step.instruction,
            takes=[
                TakeStatusOut(
                    capture_id=t.capture.id,
                    kind=t.capture.kind.value,
                    status=t.capture.status.value,
                    superseded=t.superseded,
                    skip_reason=t.capture.skip_reason,
                    created_at=t.capture.created_at,
                    quality=t.capture.quality,
                    media=[MediaOut.of(m) for m in t.media],
                )
                for t in s.takes
            ],
        )
        for s in o.steps
    ]
    out = CaptureStatusOut(
        protocol=ProtocolOut.of(o.protocol) if o.protocol else None,
        peer=o.peer,
        current_step=o.current_step,
        steps=steps,
        complete=o.complete,
    )
    return ok(out)


@routes.post("/api/captures/{capture_id}/upload")
@doc(
    "Patient: upload the device's own still or clip for a capture (raw body, Idempotency-Key)",
    response=MediaOut,
    status=201,
)
@allow(PATIENT)
async def upload(request: web.Request) -> web.Response:
    """Store a device upload as the capture's primary file (200 for an idempotent repeat)."""
    cid = path_uuid(request, "capture_id")
    p = principal(request)
    assert p.visit_id is not None  # patient principals are bound to a visit
    media, created = await request.app[CAPTURE].upload(
        cid,
        visit_scope=p.visit_id,
        content_type=request.headers.get("Content-Type"),
        idempotency_key=request.headers.get("Idempotency-Key"),
        body=request.content,
        content_length=request.content_length,
        actor=actor(request),
    )
    return ok(MediaOut.of(media), status=201 if created else 200)
