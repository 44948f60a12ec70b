"""Review API: a patient's timeline, a visit's montage, notes on captures."""

from __future__ import annotations

from aiohttp import web

from telehealth.handlers import review as review_handler
from telehealth.handlers.capture.schemas import MontageOut, TimelineOut
from telehealth.http.access import STAFF, actor, allow, principal
from telehealth.http.api_patients import path_uuid
from telehealth.http.jsonio import ok, parse_body
from telehealth.http.openapi import doc
from telehealth.http.schemas_review import NoteIn, NoteList
from telehealth.keys import PROTOCOLS, SESSIONMAKER
from telehealth.records import audit, review
from telehealth.records.errors import RecordNotFound
from telehealth.records.models import User

routes = web.RouteTableDef()


@routes.get("/api/patients/{patient_id}/timeline")
@doc("A patient's visits, newest first, each with a strip of its stills in protocol order", response=TimelineOut)
@allow(*STAFF)
async def timeline(request: web.Request) -> web.Response:
    """The patient timeline (audited)."""
    pid = path_uuid(request, "patient_id")
    app = request.app
    return ok(await review_handler.timeline(app[SESSIONMAKER], app[PROTOCOLS], actor(request), pid))


@routes.get("/api/visits/{visit_id}/montage")
@doc("A visit's takes in protocol order, with provenance, quality flags and device copy state", response=MontageOut)
@allow(*STAFF)
async def montage(request: web.Request) -> web.Response:
    """The visit montage (audited)."""
    vid = path_uuid(request, "visit_id")
    app = request.app
    return ok(await review_handler.montage(app[SESSIONMAKER], app[PROTOCOLS], actor(request), vid))


@routes.get("/api/visits/{visit_id}/captures/{capture_id}/notes")
@doc("Notes on a capture, oldest first", response=NoteList)
@allow(*STAFF)
async def list_notes(request: web.Request) -> web.Response:
    """Notes of one capture of this visit (audited)."""
    vid, cid = path_uuid(request, "visit_id"), path_uuid(request, "capture_id")
    async with request.app[SESSIONMAKER]() as db, db.begin():
        _, visit = await review.capture_in_visit(db, vid, cid)
        items = await review.notes(db, cid)
        audit.record(
            db, actor(request), "view_notes", object_type="capture", object_id=cid, patient_id=visit.patient_id
        )
    return ok(NoteList(items=items))


@routes.post("/api/visits/{visit_id}/captures/{capture_id}/notes")
@doc("Add a note to a capture", body=NoteIn, response=review.NoteOut, status=201)
@allow(*STAFF)
async def add_note(request: web.Request) -> web.Response:
    """Append a note (any staff member reviewing the visit may annotate it)."""
    vid, cid = path_uuid(request, "visit_id"), path_uuid(request, "capture_id")
    body = await parse_body(request, NoteIn)
    async with request.app[SESSIONMAKER]() as db, db.begin():
        capture, visit = await review.capture_in_visit(db, vid, cid)
        author = await db.get(User, principal(request).user_id)
        if author is None:
            raise RecordNotFound("user not found")
        note = await review.add_note(db, capture, body.text, author)
        audit.record(db, actor(request), "add_note", object_type="capture", object_id=cid, patient_id=visit.patient_id)
    return ok(note, status=201)
