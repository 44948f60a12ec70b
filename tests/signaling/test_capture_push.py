"""Capture progress pushed to the clinician's visit socket, and device acknowledgements of takes."""

from __future__ import annotations

import asyncio
import uuid

import aiohttp
import pytest

from telehealth.signaling import CAPTURE_FEED_KEY, RedisBroker
from tests.signaling.conftest import BASE_SETTINGS, Server, start_server
from tests.signaling.wsclient import Peer, admitted_pair, clinician


async def no_capture_push(peer: Peer, wait: float = 0.5) -> None:
    """Assert no `capture_changed` is (or was, unread) received within `wait` seconds."""
    with pytest.raises(TimeoutError):
        await peer.expect("capture_changed", wait=wait)


async def test_clinician_is_told_of_capture_changes_and_the_patient_is_not(sig: Server) -> None:
    visit = uuid.uuid4()
    doc, pat = await admitted_pair(sig.http, sig.base, str(visit))
    other = await clinician(sig.http, sig.base, str(uuid.uuid4()))
    await sig.app[CAPTURE_FEED_KEY].capture_changed(visit, "take")
    pushed = await doc.expect("capture_changed")
    assert (pushed["visit_id"], pushed["reason"]) == (str(visit), "take")
    await no_capture_push(pat)
    await no_capture_push(other)


async def test_a_burst_of_changes_to_one_visit_becomes_one_push(sig: Server) -> None:
    visit = uuid.uuid4()
    doc, _ = await admitted_pair(sig.http, sig.base, str(visit))
    feed = sig.app[CAPTURE_FEED_KEY]
    for reason in ("take", "clip_stored", "upload_stored"):
        await feed.capture_changed(visit, reason)
    assert (await doc.expect("capture_changed"))["reason"] == "upload_stored"
    await no_capture_push(doc)


async def test_browsers_may_not_send_capture_changed(sig: Server) -> None:
    visit = uuid.uuid4()
    doc, pat = await admitted_pair(sig.http, sig.base, str(visit))
    ref = await pat.send("capture_changed", visit_id=str(visit), reason="take")
    assert (await pat.expect("error", ref=ref))["code"] == "unknown_type"
    await no_capture_push(doc)


async def test_the_patient_acknowledges_takes_to_the_clinician_and_only_patients_may(sig: Server) -> None:
    doc, pat = await admitted_pair(sig.http, sig.base)
    take_id = str(uuid.uuid4())
    await doc.send("capture_take", peer="pat", step_id="smile", take_id=take_id, age_ms=4200)
    got = await pat.expect("capture_take")
    assert (got["take_id"], got["age_ms"], got["peer"]) == (take_id, 4200, "c-drwho")
    await pat.send("capture_ack", peer="c-drwho", take_id=take_id, part="take")
    ack = await doc.expect("capture_ack")
    assert (ack["take_id"], ack["part"], ack["peer"]) == (take_id, "take", "pat")
    ref = await doc.send("capture_ack", peer="pat", take_id=take_id, part="ids")
    assert (await doc.expect("error", ref=ref))["code"] == "forbidden"


async def test_capture_changes_reach_a_clinician_connected_to_another_process(require_redis: str) -> None:
    visit = uuid.uuid4()
    server_a, _ = await start_server(BASE_SETTINGS, broker=RedisBroker(require_redis, "node-a"))
    server_b, _ = await start_server(BASE_SETTINGS, broker=RedisBroker(require_redis, "node-b"))
    try:
        async with aiohttp.ClientSession() as http:
            base_b = str(server_b.make_url("")).rstrip("/")
            doc = await clinician(http, base_b, str(visit))
            # Process A holds no socket of this visit (e.g. it stored a device upload).
            await server_a.app[CAPTURE_FEED_KEY].capture_changed(visit, "upload_stored")
            pushed = await doc.expect("capture_changed", wait=10)
            assert (pushed["visit_id"], pushed["reason"]) == (str(visit), "upload_stored")
            await asyncio.sleep(0)
    finally:
        await server_a.close()
        await server_b.close()
