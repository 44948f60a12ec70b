"""Fuzz: malformed, oversized, unknown and cross-visit messages never hurt the other visit."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.signaling.conftest import Server
from tests.signaling.wsclient import SDP, Peer, admitted_pair, connect

TYPES = [
    "auth", "resume", "join", "waiting", "admit", "decline", "offer", "answer", "ice_candidate",
    "ice_restart", "hangup", "presence", "error", "lobby", "lobby_update", "announce",
    "ice_servers", "nope", "", "OFFER",
]  # fmt: skip
VICTIMS = ["pat", "c-drwho", "lou", "../pat", "pat\x00", "x" * 65]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)  # fmt: skip

messages = st.fixed_dictionaries(
    {"type": st.sampled_from(TYPES)},
    optional={
        "v": st.sampled_from([1, 2, "1", None]),
        "id": st.text(max_size=70),
        "peer": st.sampled_from(VICTIMS),
        "participant_id": st.sampled_from(VICTIMS),
        "sdp": st.text(max_size=50),
        "candidate": json_values,
        "session": st.booleans(),
        "token": st.sampled_from(["join:v1:pat", "join:fuzz:pat", "sess:drwho", "garbage"]),
        "resume_token": st.text(max_size=40),
        "extra": json_values,
    },
).map(json.dumps)

frames = st.one_of(
    messages,
    messages.map(lambda m: m.replace('"v": 1', '"v": 1, "id": "f"')),
    st.text(max_size=200),
    st.binary(max_size=64),
    st.integers(66_000, 200_000).map(
        lambda n: json.dumps({"type": "offer", "v": 1, "id": "big", "sdp": "a" * n})
    ),
)  # fmt: skip


async def attacker(sig: Server, authed: bool) -> Peer:
    """A participant of another visit (admitted interpreter) or an unauthenticated socket."""
    peer = await connect(sig.http, f"{sig.base}/ws/visit/fuzz")
    if authed:
        await peer.send("auth", token="join:fuzz:mallory:interpreter")
        await peer.expect("join")
    return peer


def assert_only_errors(received: list[dict[str, Any]]) -> None:
    """Anything the attacker receives must be an error frame or its own join/ICE servers."""
    allowed = {"error", "join", "ice_servers", "presence", "hangup", "waiting"}
    assert {m["type"] for m in received} <= allowed


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(frames, min_size=1, max_size=12), authed=st.booleans())
async def test_fuzzed_frames_leave_the_other_visit_untouched(
    sig: Server, batch: list[str | bytes], authed: bool
) -> None:
    if not hasattr(sig, "pair"):
        sig.pair = await admitted_pair(sig.http, sig.base, "v1")  # type: ignore[attr-defined]
    doc, pat = sig.pair  # type: ignore[attr-defined]
    evil = await attacker(sig, authed)
    for frame in batch:
        if evil.ws.closed:
            break
        try:
            if isinstance(frame, bytes):
                await evil.ws.send_bytes(frame)
            else:
                await evil.ws.send_str(frame)
        except (ConnectionResetError, aiohttp.ClientConnectionResetError):
            break
    await evil.ws.close()
    # Only policy close codes; never 1011 (internal error).
    assert evil.ws.close_code in (None, 1000, 1009, 4001, 4008, 4009, 4012, 4010)
    assert_only_errors(evil.seen)

    # The legitimate visit still works and received nothing from the attacker.
    await doc.send("offer", peer="pat", sdp=SDP)
    got = await pat.expect("offer")
    assert got["peer"] == "c-drwho" and got["sdp"] == SDP
    for peer in (doc, pat):
        strays = [m for m in peer.drain_backlog() if m["type"] != "presence"]
        assert strays == []
    async with sig.http.get(f"{sig.base}/ws/visit/v1") as resp:
        assert resp.status < 500
