"""The clinician's visit socket is told of every capture change, so the capture panel need not poll."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.signaling.wsclient import Peer
from tests.test_capture_api import new_visit, start_capture
from tests.test_uploads import camera_jpeg, login, upload


async def clinician_socket(client: TestClient[Any, Any], visit_id: str) -> Peer:
    """The signed-in clinician's visit socket, after its `join`."""
    origin = str(client.make_url("")).rstrip("/")
    peer = Peer(await client.ws_connect(f"/ws/visit/{visit_id}", headers={"Origin": origin}))
    await peer.send("auth", session=True)
    await peer.expect("join")
    return peer


async def test_start_take_skip_and_a_device_upload_are_pushed_to_the_clinicians_socket(
    client: TestClient[Any, Any],
) -> None:
    await login(client, "clinician")
    ctx = await new_visit(client, "PUSH1")
    doc = await clinician_socket(client, ctx.visit_id)
    await start_capture(client, ctx)
    assert (await doc.expect("capture_changed"))["reason"] == "started"

    # No camera stream: the take's still and clip wait for the device's copies.
    take = await (await client.post(f"/api/visits/{ctx.visit_id}/capture/steps/rest/take")).json()
    pushed = await doc.expect("capture_changed")
    assert (pushed["visit_id"], pushed["reason"]) == (ctx.visit_id, "take")

    r = await client.post(f"/api/visits/{ctx.visit_id}/capture/steps/brow_raise/skip", json={"reason": "pain"})
    assert r.status == 200, await r.text()
    assert (await doc.expect("capture_changed"))["reason"] == "skip"

    r = await upload(client, ctx, take["still"]["capture_id"], camera_jpeg(), "image/jpeg")
    assert r.status == 201, await r.text()
    assert (await doc.expect("capture_changed"))["reason"] == "upload_stored"
    await doc.ws.close()
