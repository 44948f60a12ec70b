"""A small test client for the signaling protocol."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import aiohttp

_ids = itertools.count()
SDP = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\n"


class Peer:
    """One signaling WebSocket; remembers everything it received."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.seen: list[dict[str, Any]] = []
        self._backlog: list[dict[str, Any]] = []

    async def send(self, type_: str, **fields: Any) -> str:
        """Send a message with a fresh id; returns the id."""
        mid = f"m{next(_ids)}"
        await self.ws.send_str(json.dumps({"type": type_, "v": 1, "id": mid, **fields}))
        return mid

    async def next(self, wait: float = 5.0) -> dict[str, Any] | None:
        """The next message, or None when the socket closed."""
        if self._backlog:
            return self._backlog.pop(0)
        msg = await self.ws.receive(timeout=wait)
        if msg.type is not aiohttp.WSMsgType.TEXT:
            return None
        data: dict[str, Any] = json.loads(msg.data)
        self.seen.append(data)
        return data

    async def expect(self, type_: str, wait: float = 5.0, **match: Any) -> dict[str, Any]:
        """Skip messages until one of this type (and matching fields) arrives; others are kept."""
        skipped: list[dict[str, Any]] = []
        try:
            async with asyncio.timeout(wait):
                while True:
                    data = await self.next(wait)
                    if data is None:
                        raise AssertionError(f"closed ({self.ws.close_code}) waiting for {type_}")
                    if data["type"] == type_ and all(data.get(k) == v for k, v in match.items()):
                        return data
                    skipped.append(data)
        finally:
            self._backlog[:0] = skipped

    async def closed(self, wait: float = 5.0) -> int | None:
        """Read until the server closes; returns the close code."""
        async with asyncio.timeout(wait):
            while await self.next(wait) is not None:
                pass
        return self.ws.close_code

    def drain_backlog(self) -> list[dict[str, Any]]:
        """Messages skipped by expect() and not consumed yet."""
        backlog, self._backlog = self._backlog, []
        return backlog


async def connect(
    session: aiohttp.ClientSession,
    url: str,
    *,
    origin: str | None = None,
    cookie: str | None = None,
) -> Peer:
    """Open a signaling socket (cookie = th_session value)."""
    headers: dict[str, str] = {}
    if origin:
        headers["Origin"] = origin
    if cookie:
        headers["Cookie"] = f"th_session={cookie}"
    ws = await session.ws_connect(url, headers=headers, autoping=True)
    return Peer(ws)


async def patient(session: aiohttp.ClientSession, base: str, visit: str, pid: str) -> Peer:
    """A patient authenticated with its join token, after its `join` frame."""
    peer = await connect(session, f"{base}/ws/visit/{visit}")
    await peer.send("auth", token=f"join:{visit}:{pid}")
    await peer.expect("join")
    return peer


async def clinician(session: aiohttp.ClientSession, base: str, visit: str, user: str = "drwho") -> Peer:
    """A clinician authenticated with its session cookie, after its `join` frame."""
    peer = await connect(session, f"{base}/ws/visit/{visit}", origin=base, cookie=f"sess:{user}")
    await peer.send("auth", session=True)
    await peer.expect("join")
    return peer


async def admitted_pair(
    session: aiohttp.ClientSession, base: str, visit: str = "v1", pid: str = "pat"
) -> tuple[Peer, Peer]:
    """Patient waits, clinician admits: (clinician, patient), both in the call."""
    pat = await patient(session, base, visit, pid)
    await pat.expect("waiting", visit_id=visit)
    doc = await clinician(session, base, visit)
    await doc.send("admit", participant_id=pid)
    await pat.expect("admit", participant_id=pid)
    await doc.expect("presence")
    return doc, pat
