"""Browser-facing rules shared by the HTTP views and the signaling sockets: one cookie, one origin check."""

from __future__ import annotations

from typing import Final

from aiohttp import web

# The server-side session's cookie: staff pages, the API and the clinician's sockets all read it.
SESSION_COOKIE: Final = "th_session"


def same_origin(request: web.Request, trusted: tuple[str, ...], *, missing_ok: bool) -> bool:
    """Whether the request's ``Origin`` is this site (or a trusted origin).

    A browser always sends ``Origin`` on a WebSocket handshake and on cross-origin writes, so a
    missing header means a non-browser client. Callers decide whether that is acceptable: a socket
    that authenticates with the session cookie must refuse it (``missing_ok=False``, blocks
    cross-site WebSocket hijacking from clients that strip the header); HTTP writes may allow it
    because cookie-authenticated ones also need the session's CSRF token.
    """
    origin = request.headers.get("Origin")
    if origin is None:
        return missing_ok
    if origin in trusted:
        return True
    # Behind a TLS-terminating proxy the scheme we see may be http while the browser's is https.
    return origin in (f"{request.scheme}://{request.host}", f"https://{request.host}")
