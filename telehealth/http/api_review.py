"""Review API: a patient's timeline, a visit's montage, notes on captures."""

from __future__ import annotations

from aiohttp import web

from telehealth.http.access import STAFF, actor, allow, principal
from telehealth.http.api_patients import path_uuid
from telehealth.http.jsonio import ok, parse_body
from telehealth.http.openapi import doc
from telehealth.http.schemas_review import NoteIn, NoteList
from telehealth.keys import HANDLERS, SESSIONMAKER
from telehealth.records import audit, review

routes = web.RouteTableDef()


@routes.get("/api/patients/{patient_id}/timeline")
@doc("A patient's visits, newest first, each with a strip of its stills in protocol order", response=review.TimelineOut)
@allow(*STAFF)
async def timeline(request: web.Request) -> web.Response:
    """The patient timeline (audited)."""
    pid = path_uuid(request, "patient_id")
    async with request.app[SESSIONMAKER]() as db, db.begin():
        out = await review.timeline(db, pid)
        audit.record(db, actor(request), "view_timeline", object_type="patient", object_id=pid, patient_id=pid)
    return ok(out)


@routes.get("/api/visits/{visit_id}/montage")
@doc("A visit's current takes in protocol order, with provenance and quality flags", response=review.MontageOut)
@allow(*STAFF)
async def montage(request: web.Request) -> web.Response:
    """The visit montage (audited)."""
    vid = path_uuid(request, "visit_id")
    async with request.app[SESSIONMAKER]() as db, db.begin():
        out = await review.montage(db, vid)
        audit.record(db, actor(request), "view_montage", object_type="visit", object_id=vid, patient_id=out.patient.id)
    return ok(out)


@routes.get("/api/visits/{visit_id}/captures/{capture_id}/notes")
@doc("Notes on a capture, oldest first", response=NoteList)
@allow(*STAFF)
async def list_notes(request: web.Request) -> web.Response:
    """Notes of one capture of this visit (audited)."""
    vid, cid = path_uuid(request, "visit_id"), path_uuid(request, "capture_id")
    return ok(NoteList(items=await request.app[HANDLERS].notes.list(actor(request), vid, cid)))


@routes.post("/api/visits/{visit_id}/captures/{capture_id}/notes")
@doc("Add a note to a capture", body=NoteIn, response=review.NoteOut, status=201)
@allow(*STAFF)
async def add_note(request: web.Request) -> web.Response:
    """Append a note (any staff member reviewing the visit may annotate it)."""
    vid, cid = path_uuid(request, "visit_id"), path_uuid(request, "capture_id")
    body = await parse_body(request, NoteIn)
    note = await request.app[HANDLERS].notes.add(
        actor(request), vid, cid, body.text, author_id=principal(request).user_id
    )
    return ok(note, status=201)
