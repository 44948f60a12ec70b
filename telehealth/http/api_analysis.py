"""Face-measurement API: a visit's measurements and a patient's key measurements over time (staff only)."""

from __future__ import annotations

from aiohttp import web

from telehealth.handlers.analysis import ANALYSIS
from telehealth.http.access import STAFF, actor, allow
from telehealth.http.api_patients import path_uuid
from telehealth.http.jsonio import ok, parse_query
from telehealth.http.openapi import doc
from telehealth.http.schemas_analysis import MeasurementQuery, TrendOut, VisitMeasurementsOut

routes = web.RouteTableDef()


@routes.get("/api/visits/{visit_id}/measurements")
@doc(
    "A visit's stills with their latest face measurements, and per step the metrics at the rest scale, "
    "movement from rest, asymmetry and eFACE-style computed items (?landmarks=true adds the points)",
    query=MeasurementQuery,
    response=VisitMeasurementsOut,
)
@allow(*STAFF)
async def visit_measurements(request: web.Request) -> web.Response:
    """Measurements of a visit (audited)."""
    vid = path_uuid(request, "visit_id")
    q = parse_query(request, MeasurementQuery)
    result = await request.app[ANALYSIS].visit_measurements(vid, actor(request), with_landmarks=q.landmarks)
    return ok(VisitMeasurementsOut.of(result))


@routes.get("/api/patients/{patient_id}/measurements/trend")
@doc("Key face measurements of a patient across visits, oldest first, with eFACE-style items", response=TrendOut)
@allow(*STAFF)
async def measurement_trend(request: web.Request) -> web.Response:
    """A patient's measurement trend (audited)."""
    pid = path_uuid(request, "patient_id")
    return ok(TrendOut.of(await request.app[ANALYSIS].patient_trend(pid, actor(request))))
