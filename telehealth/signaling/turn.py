"""ICE server lists with TURN REST API credentials (coturn `use-auth-secret`)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from telehealth.signaling.messages import IceServer
from telehealth.signaling.settings import SignalingSettings


def turn_credentials(secret: str, user: str, ttl: int, now: float) -> tuple[str, str]:
    """Username "<expiry>:<user>" and credential base64(HMAC-SHA1(secret, username))."""
    username = f"{int(now) + ttl}:{user}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode("ascii")


def ice_servers(settings: SignalingSettings, user: str, now: float | None = None) -> list[IceServer]:
    """STUN and TURN servers for one participant, ready for RTCPeerConnection's iceServers."""
    servers: list[IceServer] = []
    if settings.stun_urls:
        servers.append(IceServer(urls=settings.stun_urls))
    if settings.turn_urls and settings.turn_secret:
        when = time.time() if now is None else now
        username, credential = turn_credentials(settings.turn_secret, user, settings.turn_ttl, when)
        servers.append(IceServer(urls=settings.turn_urls, username=username, credential=credential))
    return servers
