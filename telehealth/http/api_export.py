"""Export a visit: a FHIR R4 Bundle for the hospital record, or a ZIP of the originals."""

from __future__ import annotations

import contextlib
import json

from aiohttp import web

from telehealth.http.access import STAFF, actor, allow
from telehealth.http.api_patients import path_uuid
from telehealth.http.api_visits import public_base
from telehealth.http.openapi import doc
from telehealth.keys import EXPORT

routes = web.RouteTableDef()


@routes.get("/api/visits/{visit_id}/export/fhir")
@doc("The visit as a FHIR R4 Bundle (Media, DiagnosticReport, Observations)", content_type="application/fhir+json")
@allow(*STAFF)
async def fhir_export(request: web.Request) -> web.Response:
    """The FHIR Bundle of a visit (audited)."""
    vid = path_uuid(request, "visit_id")
    bundle = await request.app[EXPORT].fhir(actor(request), vid, base_url=public_base(request))
    return web.Response(
        text=json.dumps(bundle, indent=2),
        content_type="application/fhir+json",
        headers={"Content-Disposition": f'attachment; filename="visit-{vid}.fhir.json"'},
    )


@routes.get("/api/visits/{visit_id}/export/zip")
@doc("The visit's original files as a ZIP with a manifest of SHA-256 hashes", content_type="application/zip")
@allow(*STAFF)
async def zip_export(request: web.Request) -> web.StreamResponse:
    """Stream the ZIP of originals (audited before the first byte is sent)."""
    vid = path_uuid(request, "visit_id")
    headers = {"Content-Type": "application/zip", "Content-Disposition": f'attachment; filename="visit-{vid}.zip"'}
    if request.method == "HEAD":
        # Only the headers: no archive is built, sent or audited as an export.
        return web.Response(headers=headers)
    archive = await request.app[EXPORT].zip(actor(request), vid)
    resp = web.StreamResponse(headers=headers)
    await resp.prepare(request)
    async with contextlib.aclosing(archive.chunks()) as chunks:
        async for chunk in chunks:
            await resp.write(chunk)
    await resp.write_eof()
    return resp
