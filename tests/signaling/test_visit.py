"""A visit over one server: waiting room, admission, relaying, hang-up, resume, lobby."""

from __future__ import annotations

import asyncio

import pytest

from telehealth.signaling import CloseCode
from tests.signaling.conftest import Server, tuned
from tests.signaling.wsclient import SDP, admitted_pair, clinician, connect, patient


async def test_patient_waits_until_admitted_then_sdp_and_ice_flow(sig: Server) -> None:
    pat = await patient(sig.http, sig.base, "v1", "pat")
    await pat.expect("waiting", visit_id="v1")
    doc = await clinician(sig.http, sig.base, "v1")
    # The clinician's join lists the waiting patient.
    join = next(m for m in doc.seen if m["type"] == "join")
    assert [p["status"] for p in join["participants"]] == ["waiting"]
    # A waiting patient may not start negotiating.
    ref = await pat.send("offer", sdp=SDP)
    error = await pat.expect("error", ref=ref)
    assert error["code"] == "forbidden"

    await doc.send("admit", participant_id="pat")
    await pat.expect("admit", participant_id="pat")
    seen = await pat.expect("presence")
    assert seen["participant"]["participant_id"] == "c-drwho"

    await doc.send("offer", peer="pat", sdp=SDP)
    offer = await pat.expect("offer")
    assert offer["peer"] == "c-drwho" and offer["sdp"] == SDP
    await pat.send("answer", sdp=SDP)  # peer may be omitted with a single peer
    answer = await doc.expect("answer")
    assert answer["peer"] == "pat"
    candidate = {"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host", "sdpMid": "0"}
    await pat.send("ice_candidate", peer="c-drwho", candidate=candidate)
    got = await doc.expect("ice_candidate")
    assert got["candidate"]["candidate"] == candidate["candidate"]
    assert sig.gateway.states["v1"] == ["waiting", "in_call"]


async def test_clinician_hangup_ends_visit_for_everyone(sig: Server) -> None:
    doc, pat = await admitted_pair(sig.http, sig.base)
    await doc.send("hangup")
    ended = await pat.expect("hangup")
    assert ended == {**ended, "peer": "c-drwho", "reason": "ended"}
    assert await pat.closed() == CloseCode.ENDED
    assert await doc.closed() == CloseCode.ENDED
    assert sig.gateway.states["v1"][-1] == "ended"
    # The ended visit refuses new joins (the gateway refuses the credentials).
    again = await connect(sig.http, f"{sig.base}/ws/visit/v1")
    await again.send("auth", token="join:v1:pat")
    assert (await again.expect("error"))["code"] == "auth_failed"


async def test_patient_hangup_leaves_and_clinician_sees_left(sig: Server) -> None:
    doc, pat = await admitted_pair(sig.http, sig.base)
    await pat.send("hangup")
    assert await pat.closed() == CloseCode.NORMAL
    left = await doc.expect("presence")
    while left["participant"]["status"] != "left":
        left = await doc.expect("presence")
    assert left["participant"]["participant_id"] == "pat"
    assert sig.gateway.states["v1"] == ["waiting", "in_call"]


async def test_decline_turns_patient_away(sig: Server) -> None:
    pat = await patient(sig.http, sig.base, "v1", "pat")
    doc = await clinician(sig.http, sig.base, "v1")
    await doc.send("decline", participant_id="pat", reason="wrong day")
    declined = await pat.expect("decline")
    assert declined["reason"] == "wrong day"
    assert await pat.closed() == CloseCode.DECLINED


async def test_only_clinicians_admit_and_only_waiting_participants(sig: Server) -> None:
    pat = await patient(sig.http, sig.base, "v1", "pat")
    other = await patient(sig.http, sig.base, "v1", "kin")
    ref = await other.send("admit", participant_id="pat")
    assert (await other.expect("error", ref=ref))["code"] == "forbidden"
    doc = await clinician(sig.http, sig.base, "v1")
    ref = await doc.send("admit", participant_id="nobody")
    assert (await doc.expect("error", ref=ref))["code"] == "unknown_peer"
    await doc.send("admit", participant_id="pat")
    await pat.expect("admit")
    ref = await doc.send("admit", participant_id="pat")
    assert (await doc.expect("error", ref=ref))["code"] == "invalid_state"


async def test_third_participant_needs_explicit_peer(sig: Server) -> None:
    _, pat = await admitted_pair(sig.http, sig.base)
    interp = await connect(sig.http, f"{sig.base}/ws/visit/v1")
    await interp.send("auth", token="join:v1:lou:interpreter")
    join = await interp.expect("join")
    # Interpreters skip the waiting room and see who is in the call.
    assert join["status"] == "admitted" and join["role"] == "interpreter"
    assert {p["participant_id"] for p in join["participants"]} == {"c-drwho", "pat"}
    ref = await pat.send("offer", sdp=SDP)
    assert (await pat.expect("error", ref=ref))["code"] == "peer_required"
    await pat.send("offer", peer="lou", sdp=SDP)
    assert (await interp.expect("offer"))["peer"] == "pat"


async def test_unknown_peer_and_cross_visit_targets_are_rejected(sig: Server) -> None:
    doc, pat = await admitted_pair(sig.http, sig.base, "v1")
    doc2, pat2 = await admitted_pair(sig.http, sig.base, "v2")
    ref = await doc.send("offer", peer="pat2-does-not-exist", sdp=SDP)
    assert (await doc.expect("error", ref=ref))["code"] == "unknown_peer"
    # `pat` exists in v1 only: v2's clinician cannot reach it.
    ref = await doc2.send("offer", peer="c-drwho", sdp=SDP)
    assert (await doc2.expect("error", ref=ref))["code"] == "unknown_peer"
    await doc.send("offer", peer="pat", sdp="v=0 from v1")
    assert (await pat.expect("offer"))["sdp"] == "v=0 from v1"
    assert not [m for m in pat2.drain_backlog() if m["type"] == "offer"]


async def test_same_participant_connecting_again_supersedes_old_socket(sig: Server) -> None:
    first = await patient(sig.http, sig.base, "v1", "pat")
    await patient(sig.http, sig.base, "v1", "pat")
    assert await first.closed() == CloseCode.SUPERSEDED


@pytest.mark.parametrize("sig_settings", [tuned(auth_timeout=0.2)])
async def test_silent_socket_is_closed_for_missing_credentials(sig: Server) -> None:
    silent = await connect(sig.http, f"{sig.base}/ws/visit/v1")
    assert await silent.closed() == CloseCode.AUTH_TIMEOUT


async def test_commands_before_auth_are_refused(sig: Server) -> None:
    peer = await connect(sig.http, f"{sig.base}/ws/visit/v1")
    ref = await peer.send("offer", sdp=SDP)
    assert (await peer.expect("error", ref=ref))["code"] == "not_authenticated"


@pytest.mark.parametrize("origin", [None, "https://evil.example"])
async def test_clinician_socket_from_foreign_origin_is_refused(sig: Server, origin) -> None:
    peer = await connect(sig.http, f"{sig.base}/ws/visit/v1", origin=origin, cookie="sess:drwho")
    await peer.send("auth", session=True)
    assert (await peer.expect("error"))["code"] == "forbidden"
    assert await peer.closed() == CloseCode.ORIGIN_REJECTED


async def test_patient_token_for_another_visit_is_refused(sig: Server) -> None:
    peer = await connect(sig.http, f"{sig.base}/ws/visit/v1")
    await peer.send("auth", token="join:v2:pat")
    assert (await peer.expect("error"))["code"] == "auth_failed"
    assert await peer.closed() == CloseCode.AUTH_FAILED


async def test_join_carries_time_limited_turn_credentials(sig: Server) -> None:
    pat = await patient(sig.http, sig.base, "v1", "pat")
    join = next(m for m in pat.seen if m["type"] == "join")
    stun, turn = join["ice_servers"]
    assert stun == {"urls": ["stun:stun.test:3478"], "username": None, "credential": None}
    expiry, _, user = turn["username"].partition(":")
    assert user == "pat" and int(expiry) > 0 and turn["credential"] != "coturn-secret"
    await pat.send("ice_servers")
    fresh = await pat.expect("ice_servers")
    assert fresh["servers"][1]["urls"] == ["turn:turn.test:3478?transport=udp"]


async def test_resume_restores_slot_and_asks_clinician_for_ice_restart(sig: Server) -> None:
    doc, pat = await admitted_pair(sig.http, sig.base)
    token = next(m for m in pat.seen if m["type"] == "join")["resume_token"]
    await pat.ws.close()
    away = await doc.expect("presence")
    assert away["participant"] == {**away["participant"], "connected": False, "status": "admitted"}

    back = await connect(sig.http, f"{sig.base}/ws/visit/v1")
    await back.send("resume", resume_token=token)
    join = await back.expect("join")
    assert join["resumed"] is True and join["status"] == "admitted"
    restart = await doc.expect("ice_restart")
    assert restart["peer"] == "pat" and restart["reason"] == "resumed"
    await doc.send("offer", peer="pat", sdp=SDP)
    assert (await back.expect("offer"))["peer"] == "c-drwho"

    # The token was bound to the old slot epoch: replaying it fails.
    replay = await connect(sig.http, f"{sig.base}/ws/visit/v1")
    await replay.send("resume", resume_token=token)
    assert (await replay.expect("error"))["code"] == "resume_failed"


async def test_resumed_clinician_is_told_to_restart_ice_itself(sig: Server) -> None:
    doc, _ = await admitted_pair(sig.http, sig.base)
    token = next(m for m in doc.seen if m["type"] == "join")["resume_token"]
    await doc.ws.close()
    back = await connect(sig.http, f"{sig.base}/ws/visit/v1")
    await back.send("resume", resume_token=token)
    await back.expect("join", resumed=True)
    assert (await back.expect("ice_restart"))["peer"] == "pat"


@pytest.mark.parametrize("sig_settings", [tuned(resume_grace=0.2)])
async def test_slot_is_released_after_the_grace_period(sig: Server) -> None:
    doc, pat = await admitted_pair(sig.http, sig.base)
    token = next(m for m in pat.seen if m["type"] == "join")["resume_token"]
    await pat.ws.close()
    gone = await doc.expect("presence")
    while gone["participant"]["status"] != "left":
        gone = await doc.expect("presence")
    late = await connect(sig.http, f"{sig.base}/ws/visit/v1")
    await late.send("resume", resume_token=token)
    assert (await late.expect("error"))["code"] == "resume_failed"


async def test_lobby_feed_shows_waiting_patients_live(sig: Server) -> None:
    early = await patient(sig.http, sig.base, "v1", "early")
    lobby = await connect(sig.http, f"{sig.base}/ws/lobby", origin=sig.base, cookie="sess:drwho")
    await lobby.send("auth", session=True)
    snapshot = await lobby.expect("lobby")
    assert [e["participant_id"] for e in snapshot["waiting"]] == ["early"]

    await patient(sig.http, sig.base, "v2", "late")
    update = await lobby.expect("lobby_update", status="waiting")
    assert update["entry"]["visit_id"] == "v2"

    doc = await clinician(sig.http, sig.base, "v1")
    await doc.send("admit", participant_id="early")
    gone = await lobby.expect("lobby_update", status="gone")
    assert gone["entry"]["participant_id"] == "early"
    assert early is not None


async def test_lobby_needs_a_session(sig: Server) -> None:
    lobby = await connect(sig.http, f"{sig.base}/ws/lobby", origin=sig.base, cookie="nope")
    await lobby.send("auth", session=True)
    assert (await lobby.expect("error"))["code"] == "auth_failed"


async def test_bad_visit_id_in_url_is_404(sig: Server) -> None:
    async with sig.http.get(f"{sig.base}/ws/visit/bad%20id") as resp:
        assert resp.status == 404


async def test_shutdown_closes_sockets_with_going_away(sig: Server) -> None:
    doc, pat = await admitted_pair(sig.http, sig.base)
    # Clients keep reading during shutdown (as browsers do), so the close handshake completes.
    shutdown = asyncio.create_task(sig.app.shutdown())
    codes = await asyncio.gather(pat.closed(), doc.closed())
    await shutdown
    assert codes == [CloseCode.GOING_AWAY, CloseCode.GOING_AWAY]
