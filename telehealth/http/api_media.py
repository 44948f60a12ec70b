"""Media files: streamed to the review pages (HTTP Range for clips) or downloaded; always audited."""

from __future__ import annotations

from aiohttp import web

from telehealth.handlers.media import open_media
from telehealth.http.access import STAFF, actor, allow
from telehealth.http.api_patients import path_uuid
from telehealth.http.jsonio import parse_query
from telehealth.http.openapi import doc
from telehealth.http.schemas_review import MediaQuery
from telehealth.keys import MEDIA_STORE, SESSIONMAKER

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
    app = request.app
    found = await open_media(
        app[SESSIONMAKER],
        app[MEDIA_STORE],
        actor(request),
        mid,
        download=q.download,
        range_header=request.headers.get("Range"),
    )
    media = found.media
    ext = _INLINE.get(media.content_type, "bin")
    disposition = "attachment" if q.download or media.content_type not in _INLINE else "inline"
    # FileResponse answers Range/If-Range itself and reads the file off the event loop.
    return web.FileResponse(
        found.path,
        chunk_size=256 * 1024,
        headers={
            "Content-Type": media.content_type,
            "Content-Disposition": f'{disposition}; filename="{found.stem}-{media.sha256[:12]}.{ext}"',
        },
    )
