"""The patient's side of a join link: what the visit is, confirm identity, consent."""

from __future__ import annotations

from aiohttp import web

from telehealth.http.access import ALL_ROLES, PATIENT, actor, allow, principal
from telehealth.http.jsonio import ok, parse_body
from telehealth.http.openapi import doc
from telehealth.http.schemas import (
    ConsentIn,
    JoinInfoOut,
    JoinSessionIn,
    PatientSessionOut,
    PatientVisitOut,
)
from telehealth.keys import HANDLERS
from telehealth.records.consent import CONSENT_TEXT, CONSENT_VERSION
from telehealth.records.models import Visit

routes = web.RouteTableDef()


def _patient_visit(visit: Visit) -> PatientVisitOut:
    return PatientVisitOut(
        visit_id=visit.id,
        clinician_name=visit.clinician.display_name,
        scheduled_at=visit.scheduled_at,
        state=visit.state,
        consent_capture=visit.consent_capture,
    )


@routes.get("/api/join/{token}")
@doc(
    "What a join link opens: clinician, time, whether a date of birth is asked, consent text",
    response=JoinInfoOut,
)
@allow(*ALL_ROLES)
async def join_info(request: web.Request) -> web.Response:
    """Describe the visit behind a join link (404 unknown, 410 expired or revoked)."""
    visit = await request.app[HANDLERS].join.visit_for_link(request.match_info["token"])
    return ok(
        JoinInfoOut(
            clinician_name=visit.clinician.display_name,
            scheduled_at=visit.scheduled_at,
            requires_dob=visit.join_requires_dob,
            consent_text=CONSENT_TEXT,
            consent_version=CONSENT_VERSION,
            state=visit.state,
        )
    )


@routes.post("/api/join/{token}/session")
@doc(
    "Open a patient session for the visit (confirming the date of birth when asked)",
    body=JoinSessionIn,
    response=PatientSessionOut,
    status=201,
)
@allow(*ALL_ROLES, csrf=False)
async def join_session(request: web.Request) -> web.Response:
    """Trade a join link (and date of birth) for a visit-bound bearer session."""
    body = await parse_body(request, JoinSessionIn)
    token, csrf_token, visit_id = await request.app[HANDLERS].join.start_session(
        actor(request), request.match_info["token"], body.birth_date
    )
    return ok(PatientSessionOut(token=token, visit_id=visit_id, csrf_token=csrf_token), status=201)


@routes.get("/api/patient/visit")
@doc("The patient's own visit", response=PatientVisitOut)
@allow(PATIENT)
async def patient_visit(request: web.Request) -> web.Response:
    """The visit bound to the patient's session."""
    p = principal(request)
    assert p.visit_id is not None
    return ok(_patient_visit(await request.app[HANDLERS].join.patient_visit(p.visit_id)))


@routes.post("/api/patient/consent")
@doc(
    "Record the patient's answer to photo and video capture",
    body=ConsentIn,
    response=PatientVisitOut,
)
@allow(PATIENT)
async def consent(request: web.Request) -> web.Response:
    """Store consent (or its refusal) with who, when and which text version."""
    body = await parse_body(request, ConsentIn)
    p = principal(request)
    assert p.visit_id is not None
    visit = await request.app[HANDLERS].join.consent(
        actor(request),
        p.visit_id,
        capture=body.capture,
        signed_name=body.signed_name,
        consent_version=body.consent_version,
    )
    return ok(_patient_visit(visit))
