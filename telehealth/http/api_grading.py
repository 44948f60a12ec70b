"""Grading API: House-Brackmann, Sunnybrook and eFACE per visit, with history."""

from __future__ import annotations

from aiohttp import web

from telehealth.http.access import CARE_TEAM, STAFF, actor, allow, principal
from telehealth.http.api_patients import path_uuid
from telehealth.http.jsonio import ok, parse_body
from telehealth.http.openapi import doc
from telehealth.http.schemas_review import GradeIn, GradeOut, GradesOut
from telehealth.keys import HANDLERS

routes = web.RouteTableDef()


@routes.get("/api/visits/{visit_id}/grades")
@doc("A visit's current grade per scale and the full grading history", response=GradesOut)
@allow(*STAFF)
async def list_grades(request: web.Request) -> web.Response:
    """Grades of a visit (audited)."""
    sheet = await request.app[HANDLERS].grading.sheet(actor(request), path_uuid(request, "visit_id"))
    out = [GradeOut.of(g, sheet.author_names.get(g.created_by, "")) for g in sheet.history]
    return ok(GradesOut(current=[g for g in out if g.id in sheet.current_ids], history=out))


@routes.post("/api/visits/{visit_id}/grades")
@doc("Grade a visit on one scale; scores are computed by the server", body=GradeIn, response=GradeOut, status=201)
@allow(*CARE_TEAM)
async def add_grade(request: web.Request) -> web.Response:
    """Record a grading (clinicians and admins only); earlier gradings remain as history."""
    vid = path_uuid(request, "visit_id")
    body = await parse_body(request, GradeIn)
    grade, author_name = await request.app[HANDLERS].grading.grade(
        actor(request), vid, body.root, author_id=principal(request).user_id
    )
    return ok(GradeOut.of(grade, author_name), status=201)
