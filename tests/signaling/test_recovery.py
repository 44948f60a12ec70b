"""What a patient's browser does mid-visit (reload, second tab, closed tab) never strands the call."""

from __future__ import annotations

import asyncio
import time

from aiohttp import WSCloseCode

from telehealth.signaling import CloseCode
from tests.signaling.conftest import BASE_SETTINGS, Server
from tests.signaling.wsclient import SDP, admitted_pair, clinician, connect, patient


async def test_clinician_messages_to_a_patient_who_went_back_to_waiting_never_close_its_socket(sig: Server) -> None:
    doc, pat = await admitted_pair(sig.http, sig.base)
    await pat.send("hangup")  # the patient leaves; the clinician's page does not know yet
    while (await doc.expect("presence"))["participant"]["status"] != "left":
        pass
    # Far more stale offers and candidates than the abuse limit: each is answered, none is a strike.
    for _ in range(BASE_SETTINGS.max_strikes + 2):
        ref = await doc.send("offer", peer="pat", sdp=SDP)
        assert (await doc.expect("error", ref=ref))["code"] == "unknown_peer"
    for _ in range(3):
        ref = await doc.send("ice_candidate", peer="pat", candidate=None)
        assert (await doc.expect("error", ref=ref))["code"] == "unknown_peer"
        ref = await doc.send("admit", participant_id="pat")
        assert (await doc.expect("error", ref=ref))["code"] == "unknown_peer"
    await doc.send("ice_servers")
    await doc.expect("ice_servers")

    # The patient comes back to the waiting room: offers to it are refused, still without strikes.
    back = await patient(sig.http, sig.base, "v2", "pat")
    await back.expect("waiting")
    doc2 = await clinician(sig.http, sig.base, "v2")
    for _ in range(BASE_SETTINGS.max_strikes + 2):
        ref = await doc2.send("offer", peer="pat", sdp=SDP)
        assert (await doc2.expect("error", ref=ref))["code"] == "forbidden"
    await doc2.send("ice_servers")
    await doc2.expect("ice_servers")


async def test_patient_who_reloads_during_the_call_is_back_in_it_without_a_second_admission(sig: Server) -> None:
    doc, pat = await admitted_pair(sig.http, sig.base)
    # A reload: the old page's socket goes away, the new page authenticates with the same link.
    await pat.ws.close(code=WSCloseCode.GOING_AWAY)
    again = await connect(sig.http, f"{sig.base}/ws/visit/v1")
    await again.send("auth", token="join:v1:pat")
    join = await again.expect("join")
    assert join["status"] == "admitted" and join["resumed"] is False
    assert [p["participant_id"] for p in join["participants"]] == ["c-drwho"]
    assert not [m for m in again.drain_backlog() if m["type"] == "waiting"]
    # The clinician is told to start over with the patient's new peer connection.
    restart = await doc.expect("ice_restart")
    assert restart == {**restart, "peer": "pat", "reason": "new-peer"}
    await doc.send("offer", peer="pat", sdp=SDP)
    assert (await again.expect("offer"))["peer"] == "c-drwho"


async def test_a_second_tab_takes_over_the_one_patient_slot(sig: Server) -> None:
    doc, first = await admitted_pair(sig.http, sig.base)
    second = await connect(sig.http, f"{sig.base}/ws/visit/v1")
    await second.send("auth", token="join:v1:pat")
    assert (await second.expect("join"))["status"] == "admitted"
    assert await first.closed() == CloseCode.SUPERSEDED
    await doc.expect("ice_restart", reason="new-peer")
    patients = {m["participant"]["participant_id"] for m in doc.seen if m["type"] == "presence"}
    assert patients == {"pat"}


async def test_a_waiting_patient_who_closes_the_tab_leaves_the_lobby_within_seconds(sig: Server) -> None:
    lobby = await connect(sig.http, f"{sig.base}/ws/lobby", origin=sig.base, cookie="sess:drwho")
    await lobby.send("auth", session=True)
    await lobby.expect("lobby")
    pat = await patient(sig.http, sig.base, "v1", "pat")
    await lobby.expect("lobby_update", status="waiting")
    started = time.monotonic()
    await pat.ws.close(code=WSCloseCode.GOING_AWAY)  # what a browser sends when the page goes
    await lobby.expect("lobby_update", wait=5.0, status="gone")
    assert time.monotonic() - started < 5.0
    # A network drop (no close frame from the page) keeps the slot for the resume grace instead.
    pat2 = await patient(sig.http, sig.base, "v2", "pat2")
    await lobby.expect("lobby_update", status="waiting")
    await pat2.ws.close()
    await asyncio.sleep(BASE_SETTINGS.away_grace + 1)
    assert not [m for m in lobby.drain_backlog() if m.get("status") == "gone"]


async def test_the_waiting_room_hears_when_the_clinician_is_in_the_visit(sig: Server) -> None:
    pat = await patient(sig.http, sig.base, "v1", "pat")
    doc = await clinician(sig.http, sig.base, "v1")
    here = await pat.expect("presence")
    assert here["participant"]["role"] == "clinician" and here["participant"]["connected"] is True
    # A patient arriving after the clinician learns it from its join.
    late = await patient(sig.http, sig.base, "v2", "late")
    assert next(m for m in late.seen if m["type"] == "join")["participants"] == []
    doc2 = await clinician(sig.http, sig.base, "v3")
    early = await connect(sig.http, f"{sig.base}/ws/visit/v3")
    await early.send("auth", token="join:v3:kim")
    join = await early.expect("join")
    assert join["status"] == "waiting"
    assert [p["role"] for p in join["participants"]] == ["clinician"]
    assert doc is not None and doc2 is not None
