"""Grading API: House-Brackmann, Sunnybrook and eFACE per visit, with history."""

from __future__ import annotations

import uuid

from aiohttp import web
from sqlalchemy import select

from telehealth.http.access import CARE_TEAM, STAFF, actor, allow, principal
from telehealth.http.api_patients import path_uuid
from telehealth.http.jsonio import ok, parse_body
from telehealth.http.openapi import doc
from telehealth.http.schemas_review import GradeIn, GradeOut, GradesOut
from telehealth.keys import SESSIONMAKER
from telehealth.records import audit, grading, review
from telehealth.records.errors import InvalidStateError, RecordNotFound
from telehealth.records.models import User, VisitState

routes = web.RouteTableDef()


@routes.get("/api/visits/{visit_id}/grades")
@doc("A visit's current grade per scale and the full grading history", response=GradesOut)
@allow(*STAFF)
async def list_grades(request: web.Request) -> web.Response:
    """Grades of a visit (audited)."""
    vid = path_uuid(request, "visit_id")
    async with request.app[SESSIONMAKER]() as db, db.begin():
        visit, _, _ = await review.visit_header(db, vid)
        history = await grading.grade_history(db, vid)
        authors = select(User.id, User.display_name).where(User.id.in_({g.created_by for g in history}))
        names: dict[uuid.UUID, str] = {uid: name for uid, name in (await db.execute(authors)).all()}
        audit.record(db, actor(request), "view_grades", object_type="visit", object_id=vid, patient_id=visit.patient_id)
    out = [GradeOut.of(g, names.get(g.created_by, "")) for g in history]
    current_ids = {g.id for g in grading.current_grades(history).values()}
    return ok(GradesOut(current=[g for g in out if g.id in current_ids], history=out))


@routes.post("/api/visits/{visit_id}/grades")
@doc("Grade a visit on one scale; scores are computed by the server", body=GradeIn, response=GradeOut, status=201)
@allow(*CARE_TEAM)
async def add_grade(request: web.Request) -> web.Response:
    """Record a grading (clinicians and admins only); earlier gradings remain as history."""
    vid = path_uuid(request, "visit_id")
    body = await parse_body(request, GradeIn)
    async with request.app[SESSIONMAKER]() as db, db.begin():
        visit, _, _ = await review.visit_header(db, vid)
        if visit.state is VisitState.CANCELLED:
            raise InvalidStateError("a cancelled visit cannot be graded")
        author = await db.get(User, principal(request).user_id)
        if author is None:
            raise RecordNotFound("user not found")
        grade = await grading.save_grade(db, visit_id=vid, grading=body.root, author=author.id)
        audit.record(
            db,
            actor(request),
            "grade_visit",
            object_type="visit",
            object_id=vid,
            patient_id=visit.patient_id,
            detail={"scale": grade.scale.value, "grade_id": str(grade.id)},
        )
    return ok(GradeOut.of(grade, author.display_name), status=201)
