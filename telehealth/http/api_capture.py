"""Standardized capture API: protocol, the patient's server peer, steps, takes, device uploads.

Views only parse, check the caller's visit, call the capture handlers and serialize.
Routing note for multi-process deployments: see telehealth.handlers.capture.takes (sticky by visit).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, StringConstraints

from telehealth.handlers.capture.schemas import CaptureStatusOut, MediaOut, ProtocolOut, TakeResultOut
from telehealth.http.access import CARE_TEAM, PATIENT, REVIEWER, actor, allow, principal
from telehealth.http.api_patients import path_uuid
from telehealth.http.jsonio import ok, parse_body
from telehealth.http.openapi import doc
from telehealth.http.schemas import In
from telehealth.keys import CAPTURE_TAKES, CAPTURE_UPLOADS
from telehealth.records.errors import RecordNotFound

routes = web.RouteTableDef()

MAX_SDP = 32 * 1024


class StartIn(In):
    protocol_id: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None


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


class SkipIn(In):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]


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
    protocol = await request.app[CAPTURE_TAKES].start(vid, body.protocol_id, actor(request))
    return ok(StartOut(protocol=protocol, visit_id=vid))


@routes.post("/api/visits/{visit_id}/capture/peer")
@doc("Patient: offer the camera to the server's capture peer; returns the answer", body=SdpIn, response=SdpOut)
@allow(PATIENT)
async def peer(request: web.Request) -> web.Response:
    """Create (or replace) the visit's server capture peer."""
    vid = _visit_id(request)
    body = await parse_body(request, SdpIn)
    return ok(SdpOut(sdp=await request.app[CAPTURE_TAKES].connect(vid, body.sdp, actor(request))))


@routes.post("/api/visits/{visit_id}/capture/steps/{step_id}/begin")
@doc("Begin a step: its capture window starts now", response=BeginOut)
@allow(*CARE_TEAM)
async def begin(request: web.Request) -> web.Response:
    """Mark the step start on the patient's stream."""
    vid = _visit_id(request)
    mark = await request.app[CAPTURE_TAKES].begin(vid, request.match_info["step_id"])
    return ok(BeginOut(step_id=mark.step_id, started_at=mark.started_at))


@routes.post("/api/visits/{visit_id}/capture/steps/{step_id}/take")
@doc("Take a step: still stored now, clip after a post-roll", response=TakeResultOut)
@allow(*CARE_TEAM)
async def take(request: web.Request) -> web.Response:
    """A take (a retake supersedes the previous take)."""
    vid = _visit_id(request)
    takes = request.app[CAPTURE_TAKES]
    return ok(await takes.take(vid, request.match_info["step_id"], actor(request), _user_id(request)))


@routes.post("/api/visits/{visit_id}/capture/steps/{step_id}/skip")
@doc("Skip a step, with the reason", body=SkipIn, response=TakeResultOut)
@allow(*CARE_TEAM)
async def skip(request: web.Request) -> web.Response:
    """Record a skipped step."""
    vid = _visit_id(request)
    body = await parse_body(request, SkipIn)
    takes = request.app[CAPTURE_TAKES]
    return ok(await takes.skip(vid, request.match_info["step_id"], body.reason, actor(request), _user_id(request)))


@routes.get("/api/visits/{visit_id}/capture")
@doc("Where the visit's capture stands: protocol, peer, every take of every step", response=CaptureStatusOut)
@allow(*CARE_TEAM, REVIEWER, PATIENT)
async def status(request: web.Request) -> web.Response:
    """Capture progress of the visit."""
    return ok(await request.app[CAPTURE_TAKES].overview(_visit_id(request)))


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
    media, created = await request.app[CAPTURE_UPLOADS].upload(
        cid,
        visit_scope=p.visit_id,
        content_type=request.headers.get("Content-Type"),
        idempotency_key=request.headers.get("Idempotency-Key"),
        body=request.content,
        content_length=request.content_length,
        actor=actor(request),
    )
    return ok(MediaOut.of(media), status=201 if created else 200)
