"""Patient registry API."""

from __future__ import annotations

import uuid

from aiohttp import web

from telehealth.http.access import CARE_TEAM, STAFF, actor, allow, principal
from telehealth.http.jsonio import ok, parse_body, parse_query
from telehealth.http.openapi import doc
from telehealth.http.schemas import PatientIn, PatientList, PatientOut, PatientPatch, PatientQuery
from telehealth.keys import HANDLERS
from telehealth.records.errors import RecordNotFound

routes = web.RouteTableDef()


def path_uuid(request: web.Request, name: str) -> uuid.UUID:
    """A UUID from the path; anything else is simply not found."""
    try:
        return uuid.UUID(request.match_info[name])
    except ValueError as exc:
        raise RecordNotFound(f"{name.removesuffix('_id')} not found") from exc


@routes.get("/api/patients")
@doc("Search patients by MRN or name prefix", query=PatientQuery, response=PatientList)
@allow(*STAFF)
async def search(request: web.Request) -> web.Response:
    """Search the registry."""
    q = parse_query(request, PatientQuery)
    found = await request.app[HANDLERS].patients.search(actor(request), q.q, limit=q.limit)
    return ok(PatientList(items=[PatientOut.of(p) for p in found]))


@routes.post("/api/patients")
@doc("Register a patient", body=PatientIn, response=PatientOut, status=201)
@allow(*CARE_TEAM)
async def create(request: web.Request) -> web.Response:
    """Register a patient (409 on a duplicate MRN)."""
    body = await parse_body(request, PatientIn)
    patient = await request.app[HANDLERS].patients.create(
        actor(request), created_by=principal(request).user_id, **body.model_dump()
    )
    return ok(PatientOut.of(patient), status=201)


@routes.get("/api/patients/{patient_id}")
@doc("Read a patient", response=PatientOut)
@allow(*STAFF)
async def get(request: web.Request) -> web.Response:
    """Read one patient (audited)."""
    patient = await request.app[HANDLERS].patients.get(actor(request), path_uuid(request, "patient_id"))
    return ok(PatientOut.of(patient))


@routes.patch("/api/patients/{patient_id}")
@doc("Update a patient's demographics", body=PatientPatch, response=PatientOut)
@allow(*CARE_TEAM)
async def update(request: web.Request) -> web.Response:
    """Change fields of a patient."""
    pid = path_uuid(request, "patient_id")
    body = await parse_body(request, PatientPatch)
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    patient = await request.app[HANDLERS].patients.update(actor(request), pid, changes)
    return ok(PatientOut.of(patient))
