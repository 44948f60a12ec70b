"""Error mapping and security headers, applied to every response."""

from __future__ import annotations

import html
import logging
import uuid

from aiohttp import web
from aiohttp.typedefs import Handler

from telehealth.http.jsonio import error_response
from telehealth.records.errors import DomainError, Throttled

log = logging.getLogger(__name__)

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "media-src 'self' blob:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def _wants_json(request: web.Request) -> bool:
    return request.path.startswith("/api/") or request.path.startswith("/ws/")


def error_page(status: int, title: str, message: str) -> web.Response:
    """A small self-contained HTML error page (no stack traces, no patient data)."""
    body = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'><link rel='icon' href='data:,'>"
        f"<title>{html.escape(title)}</title><link rel='stylesheet' href='/static/app.css'></head>"
        f"<body><main class='card narrow'><h1>{html.escape(title)}</h1>"
        f"<p>{html.escape(message)}</p></main></body></html>"
    )
    return web.Response(text=body, status=status, content_type="text/html")


_TITLES = {
    400: "Bad request",
    401: "Please sign in",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    410: "Link no longer valid",
    413: "Too large",
    415: "Unsupported media",
    429: "Too many attempts",
}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Map domain errors and HTTP errors to JSON (API) or a page (browser); never a traceback."""
    try:
        return await handler(request)
    except DomainError as exc:
        log.info("%s %s -> %s %s", request.method, request.path, exc.status, exc.code)
        if _wants_json(request):
            resp = error_response(exc.status, exc.code, exc.message, exc.details)
        else:
            resp = error_page(exc.status, _TITLES.get(exc.status, "Error"), exc.message)
        if isinstance(exc, Throttled):
            resp.headers["Retry-After"] = str(exc.retry_after)
        return resp
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(exc.status, "http_error")
        if _wants_json(request):
            return error_response(exc.status, code, exc.reason)
        return error_page(exc.status, _TITLES.get(exc.status, "Error"), exc.reason)
    except Exception:
        incident = uuid.uuid4().hex[:12]
        log.exception("unhandled error %s on %s %s", incident, request.method, request.path)
        if _wants_json(request):
            return error_response(500, "internal", f"internal error (incident {incident})")
        return error_page(500, "Something went wrong", f"Incident {incident}")


async def security_headers(request: web.Request, resp: web.StreamResponse) -> None:
    """CSP, framing, referrer, and no-store on everything that may carry patient data.

    An ``on_response_prepare`` hook rather than a middleware: it also reaches streamed responses
    (the ZIP export prepares its headers inside the view) and redirects raised as exceptions.
    """
    h = resp.headers
    h.setdefault("Content-Security-Policy", CSP)
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("Referrer-Policy", "no-referrer")
    h.setdefault("X-Frame-Options", "DENY")
    h.setdefault("Permissions-Policy", "camera=(self), microphone=(self), geolocation=()")
    h.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if request.secure:
        h.setdefault("Strict-Transport-Security", "max-age=31536000")
    if not request.path.startswith("/static/"):
        h["Cache-Control"] = "no-store"
    else:
        h.setdefault("Cache-Control", "no-cache")
