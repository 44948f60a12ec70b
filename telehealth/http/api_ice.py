"""ICE servers for the browser: STUN and time-limited TURN credentials."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel

from telehealth.http.access import PATIENT, STAFF, allow, principal
from telehealth.http.jsonio import ok
from telehealth.http.openapi import doc
from telehealth.keys import HANDLERS
from telehealth.signaling.messages import IceServer

routes = web.RouteTableDef()


class IceServersOut(BaseModel):
    ice_servers: list[IceServer]


@routes.get("/api/ice-servers")
@doc(
    "STUN/TURN servers for RTCPeerConnection (TURN credentials expire; ask again for fresh ones)",
    response=IceServersOut,
)
@allow(PATIENT, *STAFF)
async def get_ice_servers(request: web.Request) -> web.Response:
    """The ICE servers for this caller, with TURN REST API credentials bound to its identity."""
    return ok(IceServersOut(ice_servers=request.app[HANDLERS].ice.servers(principal(request).actor_id)))
