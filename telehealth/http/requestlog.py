"""Request ids, visit ids and one log line per request (the access log, redacted)."""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Handler

from telehealth.http.access import PRINCIPAL_KEY
from telehealth.logs import redact, request_id_var, visit_id_var

access_log = logging.getLogger("telehealth.access")

_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# Probes, scrapes and static files arrive all the time; they would drown the visits in the log.
_QUIET_PATHS: Final = frozenset({"/healthz", "/readyz", "/metrics"})


def _request_id(request: web.Request) -> str:
    # nginx passes its $request_id, so proxy and app lines join up; anything odd is replaced.
    incoming = request.headers.get("X-Request-Id", "")
    return incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex


def _visit_of(request: web.Request) -> str | None:
    if visit := request.match_info.get("visit_id"):
        return visit
    p = request.get(PRINCIPAL_KEY)
    return str(p.visit_id) if p is not None and p.visit_id else None


@web.middleware
async def request_context_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give the request an id (X-Request-Id), tag its log records, and log one line when it ends."""
    rid = _request_id(request)
    rid_token = request_id_var.set(rid)
    visit_token = visit_id_var.set(request.match_info.get("visit_id") or None)
    started = time.perf_counter()
    status = 500
    try:
        resp = await handler(request)
        status = resp.status
        if not resp.prepared:
            resp.headers["X-Request-Id"] = rid
        return resp
    except web.HTTPException as exc:  # redirects and the like pass through as exceptions
        status = exc.status
        exc.headers["X-Request-Id"] = rid
        raise
    finally:
        if visit := _visit_of(request):  # a patient's visit is known only once the session is resolved
            visit_id_var.set(visit)
        duration_ms = round((time.perf_counter() - started) * 1000, 1)
        http = {"method": request.method, "path": redact(request.path), "status": status, "ms": duration_ms}
        access_log.log(
            logging.DEBUG if request.path in _QUIET_PATHS or request.path.startswith("/static/") else logging.INFO,
            "%s %s %s %.1fms",
            request.method,
            request.path,
            status,
            duration_ms,
            extra={"http": http},
        )
        visit_id_var.reset(visit_token)
        request_id_var.reset(rid_token)
