"""Media files: streamed to the review pages (HTTP Range for clips) or downloaded; always audited."""

from __future__ import annotations

import asyncio

from aiohttp import web

from telehealth.http.access import STAFF, actor, allow
from telehealth.http.api_patients import path_uuid
from telehealth.http.jsonio import parse_query
from telehealth.http.openapi import doc
from telehealth.http.schemas_review import MediaQuery
from telehealth.keys import MEDIA_STORE, SESSIONMAKER
from telehealth.records import audit, review
from telehealth.records.errors import RecordNotFound

routes = web.RouteTableDef()

# Only types a browser renders safely are served inline; anything else is a download.
_INLINE = {"image/png": "png", "image/jpeg": "jpg", "video/webm": "webm", "video/mp4": "mp4"}


@routes.get("/api/media/{media_id}")
@doc("Stream (Range supported) or, with ?download=true, download one stored file", query=MediaQuery)
@allow(*STAFF)
async def get_media(request: web.Request) -> web.StreamResponse:
    """Serve a media file after the access is audited (every request, ranges included)."""
    mid = path_uuid(request, "media_id")
    q = parse_query(request, MediaQuery)
    async with request.app[SESSIONMAKER]() as db, db.begin():
        media, patient_id, capture = await review.media_with_context(db, mid)
        audit.record(
            db,
            actor(request),
            "download_media" if q.download else "view_media",
            object_type="media",
            object_id=mid,
            patient_id=patient_id,
            detail={"range": request.headers["Range"][:64]} if "Range" in request.headers else None,
        )
    path = request.app[MEDIA_STORE].local_path(media.storage_key)
    if not await asyncio.to_thread(path.is_file):
        raise RecordNotFound("media file missing")
    ext = _INLINE.get(media.content_type, "bin")
    step = f"{capture.step_id}-{capture.kind.value}" if capture else "file"
    disposition = "attachment" if q.download or media.content_type not in _INLINE else "inline"
    # FileResponse answers Range/If-Range itself and reads the file off the event loop.
    return web.FileResponse(
        path,
        chunk_size=256 * 1024,
        headers={
            "Content-Type": media.content_type,
            "Content-Disposition": f'{disposition}; filename="{step}-{media.sha256[:12]}.{ext}"',
        },
    )
