"""Visit scheduling API, including patient join links."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from telehealth.handlers.visits import VisitChanges
from telehealth.http.access import CARE_TEAM, STAFF, actor, allow, principal
from telehealth.http.api_patients import path_uuid
from telehealth.http.jsonio import ok, parse_body, parse_query
from telehealth.http.openapi import doc
from telehealth.http.schemas import (
    CancelIn,
    JoinLinkOut,
    VisitIn,
    VisitList,
    VisitOut,
    VisitPatch,
    VisitQuery,
)
from telehealth.keys import HANDLERS, SETTINGS
from telehealth.records.errors import InvalidInput

routes = web.RouteTableDef()


def _when(request: web.Request, exact: datetime | None, local: datetime | None, *, required: bool) -> datetime | None:
    """The visit time from an exact instant or a wall-clock time in the clinic's zone."""
    if exact is not None:
        return exact
    if local is not None:
        return request.app[HANDLERS].visits.clinic_time(local)
    if required:
        raise InvalidInput(
            "Choose a date and time for the visit.",
            details=[{"field": "scheduled_at", "message": "missing"}],
        )
    return None


def public_base(request: web.Request) -> str:
    """The externally visible base URL for links we hand out."""
    configured = request.app[SETTINGS].public_url
    return configured.rstrip("/") if configured else f"{request.scheme}://{request.host}"


@routes.get("/api/visits")
@doc(
    "List the visits of a clinic day or week (default today), optionally only mine or one patient's",
    query=VisitQuery,
    response=VisitList,
)
@allow(*STAFF)
async def list_(request: web.Request) -> web.Response:
    """Visits for the dashboard or a patient's history."""
    q = parse_query(request, VisitQuery)
    found = await request.app[HANDLERS].visits.list(
        actor(request),
        day=q.day,
        tz_offset_minutes=q.tz_offset_minutes,
        clinician_id=principal(request).user_id if q.mine else None,
        patient_id=q.patient_id,
        span=q.span,
    )
    items = [VisitOut.of(v) for v in found.items]
    return ok(VisitList(items=items, start=found.start, end=found.end, time_zone=found.time_zone))


@routes.post("/api/visits")
@doc("Schedule a visit", body=VisitIn, response=VisitOut, status=201)
@allow(*CARE_TEAM)
async def create(request: web.Request) -> web.Response:
    """Schedule a visit for a patient (the caller is the clinician unless one is named)."""
    body = await parse_body(request, VisitIn)
    clinician_id = body.clinician_id or principal(request).user_id
    assert clinician_id is not None  # staff principals always have a user id
    scheduled_at = _when(request, body.scheduled_at, body.scheduled_local, required=True)
    assert scheduled_at is not None
    visit = await request.app[HANDLERS].visits.schedule(
        actor(request),
        patient_id=body.patient_id,
        clinician_id=clinician_id,
        scheduled_at=scheduled_at,
        reason=body.reason,
        requires_dob=body.requires_dob,
    )
    return ok(VisitOut.of(visit), status=201)


@routes.get("/api/visits/{visit_id}")
@doc("Read a visit", response=VisitOut)
@allow(*STAFF)
async def get(request: web.Request) -> web.Response:
    """One visit (audited)."""
    visit = await request.app[HANDLERS].visits.get(actor(request), path_uuid(request, "visit_id"))
    return ok(VisitOut.of(visit))


@routes.patch("/api/visits/{visit_id}")
@doc("Reschedule or reassign a visit", body=VisitPatch, response=VisitOut)
@allow(*CARE_TEAM)
async def update(request: web.Request) -> web.Response:
    """Change a visit that has not ended."""
    vid = path_uuid(request, "visit_id")
    body = await parse_body(request, VisitPatch)
    changes = VisitChanges(
        clinician_id=body.clinician_id,
        scheduled_at=_when(request, body.scheduled_at, body.scheduled_local, required=False),
        reason=body.reason,
        requires_dob=body.requires_dob,
    )
    fields = {"scheduled_at" if f == "scheduled_local" else f for f in body.model_fields_set}
    visit = await request.app[HANDLERS].visits.update(actor(request), vid, changes, fields=sorted(fields))
    return ok(VisitOut.of(visit))


@routes.post("/api/visits/{visit_id}/cancel")
@doc("Cancel a visit (revokes its join link)", body=CancelIn, response=VisitOut)
@allow(*CARE_TEAM)
async def cancel(request: web.Request) -> web.Response:
    """Cancel through the state machine."""
    vid = path_uuid(request, "visit_id")
    body = await parse_body(request, CancelIn)
    visit = await request.app[HANDLERS].visits.cancel(actor(request), vid, body.reason)
    return ok(VisitOut.of(visit))


@routes.post("/api/visits/{visit_id}/no-show")
@doc("Record that the patient did not come (once the visit's time has come)", response=VisitOut)
@allow(*CARE_TEAM)
async def no_show(request: web.Request) -> web.Response:
    """Mark a visit the patient never joined as a no-show."""
    visit = await request.app[HANDLERS].visits.no_show(actor(request), path_uuid(request, "visit_id"))
    return ok(VisitOut.of(visit))


@routes.post("/api/visits/{visit_id}/join-link")
@doc(
    "Issue a new patient join link (the previous one stops working)",
    response=JoinLinkOut,
    status=201,
)
@allow(*CARE_TEAM)
async def issue_link(request: web.Request) -> web.Response:
    """Issue a join link; the token is shown once and only its hash is stored."""
    link = await request.app[HANDLERS].visits.issue_link(actor(request), path_uuid(request, "visit_id"))
    url = f"{public_base(request)}/join/{link.token}"
    return ok(JoinLinkOut(url=url, token=link.token, expires_at=link.expires_at), status=201)


@routes.delete("/api/visits/{visit_id}/join-link")
@doc("Revoke the visit's join link", response=VisitOut)
@allow(*CARE_TEAM)
async def revoke_link(request: web.Request) -> web.Response:
    """Revoke the join link at once."""
    visit = await request.app[HANDLERS].visits.revoke_link(actor(request), path_uuid(request, "visit_id"))
    return ok(VisitOut.of(visit))
