"""A third participant invited by link: waits, is admitted, can be removed; chat; the capture protocol stays two-way."""

from __future__ import annotations

import pytest

from telehealth.signaling import CloseCode
from tests.signaling.conftest import Server, tuned
from tests.signaling.wsclient import SDP, Peer, admitted_pair, connect


async def _guest(sig: Server, pid: str = "lou", role: str = "interpreter", visit: str = "v1") -> Peer:
    peer = await connect(sig.http, f"{sig.base}/ws/visit/{visit}")
    await peer.send("auth", token=f"guest:{visit}:{pid}:{role}")
    await peer.expect("join")
    return peer


async def _three(sig: Server) -> tuple[Peer, Peer, Peer]:
    doc, pat = await admitted_pair(sig.http, sig.base)
    lou = await _guest(sig)
    await lou.expect("waiting", visit_id="v1")
    await doc.send("admit", participant_id="lou")
    await lou.expect("admit", participant_id="lou")
    return doc, pat, lou


async def test_an_invited_interpreter_waits_in_the_waiting_room_until_admitted(sig: Server) -> None:
    doc, pat = await admitted_pair(sig.http, sig.base)
    lou = await _guest(sig)
    await lou.expect("waiting", visit_id="v1")
    ref = await lou.send("offer", peer="pat", sdp=SDP)
    assert (await lou.expect("error", ref=ref))["code"] == "forbidden"
    await doc.send("admit", participant_id="lou")
    await lou.expect("admit", participant_id="lou")
    # Both pairs negotiate on their own: the interpreter (higher role) offers to the patient.
    await lou.send("offer", peer="pat", sdp=SDP)
    assert (await pat.expect("offer"))["peer"] == "lou"
    await doc.send("offer", peer="lou", sdp=SDP)
    assert (await lou.expect("offer"))["peer"] == "c-drwho"
    assert ("v1", "lou") in sig.gateway.admitted


async def test_the_clinician_removes_a_third_participant_whose_link_then_stops_working(sig: Server) -> None:
    doc, pat, lou = await _three(sig)
    await doc.send("remove", participant_id="lou")
    assert (await lou.expect("remove"))["participant_id"] == "lou"
    assert await lou.closed() == CloseCode.REMOVED
    left = await pat.expect("presence")
    while left["participant"]["participant_id"] != "lou" or left["participant"]["status"] != "left":
        left = await pat.expect("presence")
    assert sig.gateway.removed == [("v1", "lou")]
    again = await connect(sig.http, f"{sig.base}/ws/visit/v1")
    await again.send("auth", token="guest:v1:lou:interpreter")
    assert (await again.expect("error"))["code"] == "auth_failed"


async def test_only_the_clinician_removes_and_never_the_patient(sig: Server) -> None:
    doc, _pat, lou = await _three(sig)
    ref = await lou.send("remove", participant_id="pat")
    assert (await lou.expect("error", ref=ref))["code"] == "forbidden"
    ref = await doc.send("remove", participant_id="pat")
    assert (await doc.expect("error", ref=ref))["code"] == "forbidden"
    assert sig.gateway.removed == []


async def test_capture_messages_neither_come_from_nor_go_to_a_third_participant(sig: Server) -> None:
    doc, pat, lou = await _three(sig)
    ref = await lou.send("capture_start", peer="pat")
    assert (await lou.expect("error", ref=ref))["code"] == "forbidden"
    ref = await lou.send("capture_countdown", peer="pat", step_id="rest", seconds=3)
    assert (await lou.expect("error", ref=ref))["code"] == "forbidden"
    ref = await doc.send("capture_start", peer="lou")
    assert (await doc.expect("error", ref=ref))["code"] == "forbidden"
    ref = await pat.send("upload_progress", peer="lou", capture_id="c1", kind="still", state="queued")
    assert (await pat.expect("error", ref=ref))["code"] == "forbidden"
    await doc.send("capture_start", peer="pat")
    assert (await pat.expect("capture_start"))["peer"] == "c-drwho"
    assert not [m for m in lou.drain_backlog() if m["type"].startswith(("capture", "upload"))]


async def test_chat_reaches_everyone_admitted_and_is_refused_while_waiting(sig: Server) -> None:
    doc, pat = await admitted_pair(sig.http, sig.base)
    lou = await _guest(sig)
    ref = await lou.send("chat", text="hello?")
    assert (await lou.expect("error", ref=ref))["code"] == "forbidden"
    await doc.send("admit", participant_id="lou")
    await lou.expect("admit")
    await pat.send("chat", text="  My name is spelled Okafor  ")
    for peer in (doc, pat, lou):
        line = await peer.expect("chat")
        assert line["text"] == "My name is spelled Okafor"
        assert (line["sender"], line["role"], line["display_name"]) == ("pat", "patient", "Pat")
        assert line["at"] > 0
    assert sig.gateway.chat == []  # ephemeral unless the clinic keeps chat


async def test_chat_over_4_kib_is_refused_whole(sig: Server) -> None:
    doc, pat = await admitted_pair(sig.http, sig.base)
    ref = await pat.send("chat", text="é" * 2049)  # 4098 bytes in UTF-8
    assert (await pat.expect("error", ref=ref))["code"] == "invalid_message"
    await pat.send("chat", text="é" * 2048)
    assert len((await doc.expect("chat"))["text"]) == 2048


@pytest.mark.parametrize("sig_settings", [tuned(chat_per_second=0.01, chat_burst=3, keep_chat=True)])
async def test_chat_is_rate_limited_and_kept_when_the_clinic_enables_it(sig: Server) -> None:
    doc, pat = await admitted_pair(sig.http, sig.base)
    for n in range(3):
        await pat.send("chat", text=f"line {n}")
        assert (await doc.expect("chat"))["text"] == f"line {n}"
    ref = await pat.send("chat", text="one too many")
    assert (await pat.expect("error", ref=ref))["code"] == "rate_limited"
    assert sig.gateway.chat == [("pat", "line 0"), ("pat", "line 1"), ("pat", "line 2")]
