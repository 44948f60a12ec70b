"""ICE server lists with TURN REST API credentials (coturn `use-auth-secret`): the one implementation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Final, Protocol

from telehealth.signaling.messages import IceServer

# How long TURN credentials stay valid; clients ask for fresh ones (`ice_servers`) before a call.
TURN_TTL_SECONDS: Final = 3600


class IceSource(Protocol):
    """Where ICE servers are configured (the signaling settings)."""

    @property
    def stun_urls(self) -> tuple[str, ...]:
        """STUN server URLs."""
        ...

    @property
    def turn_urls(self) -> tuple[str, ...]:
        """TURN server URLs."""
        ...

    @property
    def turn_secret(self) -> str | None:
        """coturn's `static-auth-secret`."""
        ...

    @property
    def turn_ttl(self) -> int:
        """Lifetime of TURN credentials in seconds."""
        ...


def turn_credentials(secret: str, user: str, ttl: int, now: float) -> tuple[str, str]:
    """Username "<expiry>:<user>" and credential base64(HMAC-SHA1(secret, username))."""
    username = f"{int(now) + ttl}:{user}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode("ascii")


def ice_servers(source: IceSource, user: str, now: float | None = None) -> list[IceServer]:
    """STUN and TURN servers for one participant (a browser or the server's capture peer).

    Plain values: a browser gets them as JSON for RTCPeerConnection's iceServers; the capture
    peer turns each into aiortc's RTCIceServer(urls=list(s.urls), username=..., credential=...).
    """
    servers: list[IceServer] = []
    if source.stun_urls:
        servers.append(IceServer(urls=source.stun_urls))
    if source.turn_urls and source.turn_secret:
        when = time.time() if now is None else now
        username, credential = turn_credentials(source.turn_secret, user, source.turn_ttl, when)
        servers.append(IceServer(urls=source.turn_urls, username=username, credential=credential))
    return servers
