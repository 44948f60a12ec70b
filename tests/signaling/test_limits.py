"""Abuse handling: error frames with stable codes, rate limits, size limits, slow clients."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import WSCloseCode

from telehealth.signaling import CloseCode
from telehealth.signaling.connection import Connection
from telehealth.signaling.messages import Waiting
from tests.signaling.conftest import BASE_SETTINGS, Server, tuned
from tests.signaling.wsclient import admitted_pair


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("not json", "bad_json"),
        ("[1, 2]", "bad_json"),
        ('{"type": "teleport", "v": 1, "id": "a"}', "unknown_type"),
        ('{"type": "join", "v": 1, "id": "a"}', "unknown_type"),  # server-only type
        ('{"type": "offer", "v": 2, "id": "a", "sdp": "x"}', "unsupported_version"),
        ('{"type": "offer", "v": 1, "sdp": "x"}', "invalid_message"),
        ('{"type": "offer", "v": 1, "id": "a", "sdp": 5}', "invalid_message"),
        ('{"type": "offer", "v": 1, "id": "a", "sdp": "x", "evil": 1}', "invalid_message"),
    ],
)
async def test_bad_messages_get_stable_error_codes(sig: Server, raw: str, code: str) -> None:
    doc, pat = await admitted_pair(sig.http, sig.base)
    await pat.ws.send_str(raw)
    error = await pat.expect("error")
    assert error["code"] == code
    # The connection and the call survive one bad message.
    await doc.send("offer", peer="pat", sdp="v=0")
    assert (await pat.expect("offer"))["sdp"] == "v=0"


async def test_oversized_message_is_refused_with_too_large(sig: Server) -> None:
    doc, pat = await admitted_pair(sig.http, sig.base)
    ref = "big"
    huge = json.dumps({"type": "offer", "v": 1, "id": ref, "sdp": "a" * (64 * 1024)})
    await pat.ws.send_str(huge)
    assert (await pat.expect("error"))["code"] == "too_large"
    assert not [m for m in doc.drain_backlog() if m["type"] == "offer"]


async def test_repeated_abuse_closes_the_connection(sig: Server) -> None:
    doc, pat = await admitted_pair(sig.http, sig.base)
    for _ in range(BASE_SETTINGS.max_strikes + 1):
        await pat.ws.send_str("garbage")
    assert await pat.closed() == CloseCode.ABUSE
    # The clinician is told the patient dropped; its own socket is fine.
    await doc.expect("presence")
    await doc.send("ice_servers")
    await doc.expect("ice_servers")


@pytest.mark.parametrize("sig_settings", [tuned(rate_per_second=0.001, rate_burst=5)])
async def test_messages_over_the_rate_are_refused(sig: Server) -> None:
    doc, _ = await admitted_pair(sig.http, sig.base)
    for _ in range(6):
        await doc.send("ice_servers")
    codes = []
    for _ in range(6):
        msg = await doc.next()
        assert msg is not None
        codes.append(msg["type"] if msg["type"] != "error" else msg["code"])
    # auth and admit spent two tokens of the burst of five.
    assert codes == ["ice_servers"] * 3 + ["rate_limited"] * 3


class StuckSocket:
    """A WebSocket whose client never reads: send_str blocks forever."""

    def __init__(self) -> None:
        self.closed_with: int | None = None
        self.closed = False

    async def send_str(self, data: str) -> None:
        await asyncio.Event().wait()

    async def close(self, *, code: int, message: bytes, drain: bool) -> bool:
        self.closed_with, self.closed = code, True
        return True


async def test_slow_client_is_disconnected_instead_of_buffered() -> None:
    ws = StuckSocket()
    settings = tuned(send_queue_size=4)
    conn = Connection(ws, settings, "visit=v1")  # type: ignore[arg-type]
    conn.start()
    for _ in range(10):  # the writer holds one, the queue four, the sixth overflows
        conn.send(Waiting(visit_id="v1"))
    await conn.finish()
    assert ws.closed_with == CloseCode.SLOW_CLIENT
    assert conn._queue.qsize() <= settings.send_queue_size


async def test_frames_far_over_the_limit_close_the_socket(sig: Server) -> None:
    _, pat = await admitted_pair(sig.http, sig.base)
    await pat.ws.send_str("x" * (2 * 1024 * 1024))
    assert await pat.closed() == WSCloseCode.MESSAGE_TOO_BIG
