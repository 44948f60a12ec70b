"""Visit scheduling API, including patient join links."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

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
from telehealth.keys import SESSIONMAKER, SETTINGS
from telehealth.records import audit, visits
from telehealth.records.errors import InvalidInput, InvalidStateError
from telehealth.records.models import Role, User, VisitState

routes = web.RouteTableDef()


def public_base(request: web.Request) -> str:
    """The externally visible base URL for links we hand out."""
    configured = request.app[SETTINGS].public_url
    return configured.rstrip("/") if configured else f"{request.scheme}://{request.host}"


@routes.get("/api/visits")
@doc(
    "List visits of a day (default today), optionally only mine or one patient's",
    query=VisitQuery,
    response=VisitList,
)
@allow(*STAFF)
async def list_(request: web.Request) -> web.Response:
    """Visits for the dashboard or a patient's history."""
    q = parse_query(request, VisitQuery)
    offset = timedelta(minutes=q.tz_offset_minutes)
    if q.patient_id is not None and q.day is None:
        start, end = datetime(1900, 1, 1, tzinfo=UTC), datetime(9999, 1, 1, tzinfo=UTC)
    else:
        day = q.day or (datetime.now(UTC) - offset).date()
        start = datetime.combine(day, time(0), tzinfo=UTC) + offset
        end = start + timedelta(days=1)
    p = principal(request)
    async with request.app[SESSIONMAKER]() as db, db.begin():
        found = await visits.list_visits(
            db,
            start=start,
            end=end,
            clinician_id=p.user_id if q.mine else None,
            patient_id=q.patient_id,
        )
        audit.record(
            db,
            actor(request),
            "list_visits",
            patient_id=q.patient_id,
            detail={"results": len(found)},
        )
    return ok(VisitList(items=[VisitOut.of(v) for v in found]))


async def _check_clinician(db: AsyncSession, clinician_id: uuid.UUID) -> None:
    """A visit's clinician must be an active clinician or admin."""
    user = await db.get(User, clinician_id)
    if user is None or user.disabled or user.role not in (Role.CLINICIAN, Role.ADMIN):
        raise InvalidInput(
            "clinician_id is not an active clinician",
            details=[{"field": "clinician_id", "message": "unknown clinician"}],
        )


@routes.post("/api/visits")
@doc("Schedule a visit", body=VisitIn, response=VisitOut, status=201)
@allow(*CARE_TEAM)
async def create(request: web.Request) -> web.Response:
    """Schedule a visit for a patient (the caller is the clinician unless one is named)."""
    body = await parse_body(request, VisitIn)
    p = principal(request)
    clinician_id = body.clinician_id or p.user_id
    assert clinician_id is not None  # staff principals always have a user id
    async with request.app[SESSIONMAKER]() as db, db.begin():
        await _check_clinician(db, clinician_id)
        visit = await visits.schedule_visit(
            db,
            patient_id=body.patient_id,
            clinician_id=clinician_id,
            scheduled_at=body.scheduled_at,
            reason=body.reason,
            requires_dob=body.requires_dob,
        )
        audit.record(
            db,
            actor(request),
            "create_visit",
            object_type="visit",
            object_id=visit.id,
            patient_id=visit.patient_id,
        )
        visit = await visits.get_visit(db, visit.id, with_people=True)
    return ok(VisitOut.of(visit), status=201)


@routes.get("/api/visits/{visit_id}")
@doc("Read a visit", response=VisitOut)
@allow(*STAFF)
async def get(request: web.Request) -> web.Response:
    """One visit (audited)."""
    vid = path_uuid(request, "visit_id")
    async with request.app[SESSIONMAKER]() as db, db.begin():
        visit = await visits.get_visit(db, vid, with_people=True)
        audit.record(
            db,
            actor(request),
            "view_visit",
            object_type="visit",
            object_id=vid,
            patient_id=visit.patient_id,
        )
    return ok(VisitOut.of(visit))


@routes.patch("/api/visits/{visit_id}")
@doc("Reschedule or reassign a visit", body=VisitPatch, response=VisitOut)
@allow(*CARE_TEAM)
async def update(request: web.Request) -> web.Response:
    """Change a visit that has not ended."""
    vid = path_uuid(request, "visit_id")
    body = await parse_body(request, VisitPatch)
    async with request.app[SESSIONMAKER]() as db, db.begin():
        visit = await visits.get_visit(db, vid, with_people=True)
        if visit.state in (VisitState.ENDED, VisitState.CANCELLED):
            raise InvalidStateError("the visit is over and cannot be changed")
        if body.clinician_id is not None:
            await _check_clinician(db, body.clinician_id)
            visit.clinician_id = body.clinician_id
        if body.scheduled_at is not None:
            visit.scheduled_at = body.scheduled_at
        if body.reason is not None:
            visit.reason = body.reason
        if body.requires_dob is not None:
            visit.join_requires_dob = body.requires_dob
        audit.record(
            db,
            actor(request),
            "update_visit",
            object_type="visit",
            object_id=vid,
            patient_id=visit.patient_id,
            detail={"fields": sorted(body.model_fields_set)},
        )
        await db.flush()
        db.expunge(visit)
        visit = await visits.get_visit(db, vid, with_people=True)
    return ok(VisitOut.of(visit))


@routes.post("/api/visits/{visit_id}/cancel")
@doc("Cancel a visit (revokes its join link)", body=CancelIn, response=VisitOut)
@allow(*CARE_TEAM)
async def cancel(request: web.Request) -> web.Response:
    """Cancel through the state machine."""
    vid = path_uuid(request, "visit_id")
    body = await parse_body(request, CancelIn)
    async with request.app[SESSIONMAKER]() as db, db.begin():
        visit = await visits.get_visit(db, vid, with_people=True)
        visits.transition(visit, VisitState.CANCELLED)
        visit.cancel_reason = body.reason or None
        audit.record(
            db,
            actor(request),
            "cancel_visit",
            object_type="visit",
            object_id=vid,
            patient_id=visit.patient_id,
        )
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
    vid = path_uuid(request, "visit_id")
    settings = request.app[SETTINGS]
    async with request.app[SESSIONMAKER]() as db, db.begin():
        visit = await visits.get_visit(db, vid)
        token = visits.issue_join_link(visit, valid_hours=settings.join_link_hours)
        audit.record(
            db,
            actor(request),
            "issue_join_link",
            object_type="visit",
            object_id=vid,
            patient_id=visit.patient_id,
        )
    assert visit.join_expires_at is not None
    return ok(
        JoinLinkOut(
            url=f"{public_base(request)}/join/{token}",
            token=token,
            expires_at=visit.join_expires_at,
        ),
        status=201,
    )


@routes.delete("/api/visits/{visit_id}/join-link")
@doc("Revoke the visit's join link", response=VisitOut)
@allow(*CARE_TEAM)
async def revoke_link(request: web.Request) -> web.Response:
    """Revoke the join link at once."""
    vid = path_uuid(request, "visit_id")
    async with request.app[SESSIONMAKER]() as db, db.begin():
        visit = await visits.get_visit(db, vid, with_people=True)
        visits.revoke_join_link(visit)
        audit.record(
            db,
            actor(request),
            "revoke_join_link",
            object_type="visit",
            object_id=vid,
            patient_id=visit.patient_id,
        )
    return ok(VisitOut.of(visit))
