"""Messages to a visit's patient: the emailed invitation (with reminder) and "running late"."""

from __future__ import annotations

from aiohttp import web

from telehealth.http.access import CARE_TEAM, STAFF, actor, allow
from telehealth.http.api_patients import path_uuid
from telehealth.http.api_visits import public_base
from telehealth.http.jsonio import ok, parse_body
from telehealth.http.openapi import doc
from telehealth.http.schemas import InvitationIn, MessageList, MessageOut, RunningLateIn
from telehealth.keys import HANDLERS

routes = web.RouteTableDef()


@routes.post("/api/visits/{visit_id}/invitation")
@doc(
    "Email the patient a new join link with a calendar file, and schedule the reminder",
    body=InvitationIn,
    response=MessageList,
    status=201,
)
@allow(*CARE_TEAM)
async def invite(request: web.Request) -> web.Response:
    """Issue a fresh link (the previous one stops working) and queue the invitation and reminder."""
    body = await parse_body(request, InvitationIn)
    rows = await request.app[HANDLERS].messages.invite(
        actor(request), path_uuid(request, "visit_id"), email=body.email, base_url=public_base(request)
    )
    return ok(MessageList(items=[MessageOut.model_validate(r) for r in rows]), status=201)


@routes.post("/api/visits/{visit_id}/running-late")
@doc("Tell the patient the clinician is running late", body=RunningLateIn, response=MessageOut, status=201)
@allow(*CARE_TEAM)
async def running_late(request: web.Request) -> web.Response:
    """Queue a running-late message to the address last invited."""
    body = await parse_body(request, RunningLateIn)
    row = await request.app[HANDLERS].messages.running_late(
        actor(request), path_uuid(request, "visit_id"), minutes=body.minutes
    )
    return ok(MessageOut.model_validate(row), status=201)


@routes.get("/api/visits/{visit_id}/messages")
@doc("What was sent to the patient about a visit: what, to whom, when, outcome", response=MessageList)
@allow(*STAFF)
async def list_(request: web.Request) -> web.Response:
    """The visit's outgoing messages."""
    rows = await request.app[HANDLERS].messages.list(actor(request), path_uuid(request, "visit_id"))
    return ok(MessageList(items=[MessageOut.model_validate(r) for r in rows]))
