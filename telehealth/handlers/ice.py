"""ICE servers for a caller: STUN and time-limited TURN credentials bound to its identity."""

from __future__ import annotations

from telehealth.signaling.messages import IceServer
from telehealth.signaling.turn import IceSource, ice_servers


class IceHandler:
    """Hands out ICE servers; TURN credentials expire, so callers ask again for fresh ones."""

    def __init__(self, source: IceSource) -> None:
        self.source = source

    def servers(self, actor_id: str) -> list[IceServer]:
        """The ICE servers for this caller (TURN usernames carry the actor's id)."""
        return ice_servers(self.source, actor_id)
