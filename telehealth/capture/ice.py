"""ICE servers in aiortc's shape: the server peer takes the same list the browsers get."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from aiortc import RTCIceServer

__all__ = ["IceServerLike", "rtc_ice_servers"]


class IceServerLike(Protocol):
    """An ICE server entry (signaling's ``IceServer`` is one)."""

    @property
    def urls(self) -> Sequence[str]:
        """STUN/TURN URLs."""

    @property
    def username(self) -> str | None:
        """TURN username, if any."""

    @property
    def credential(self) -> str | None:
        """TURN credential, if any."""


def rtc_ice_servers(servers: Iterable[IceServerLike]) -> list[RTCIceServer]:
    """Convert to RTCIceServer (possibly empty: never aiortc's default public STUN server)."""
    return [RTCIceServer(urls=list(s.urls), username=s.username, credential=s.credential) for s in servers]
