"""One same-origin rule for the API and the sockets, against the real app on both databases."""

from datetime import UTC, datetime
from typing import Any

from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient

from telehealth.signaling import CloseCode
from tests.conftest import login

PATIENT = {"mrn": "MRN-7", "given_name": "Ada", "family_name": "Test", "birth_date": "1970-01-01"}


async def _visit_id(client: TestClient[Any, Any]) -> str:
    patient = await (await client.post("/api/patients", json=PATIENT)).json()
    body = {"patient_id": patient["id"], "scheduled_at": datetime.now(UTC).isoformat()}
    r = await client.post("/api/visits", json=body)
    assert r.status == 201, await r.text()
    return str((await r.json())["id"])


async def _first_frame_and_close(
    client: TestClient[Any, Any], visit_id: str, headers: dict[str, str]
) -> tuple[str, int | None]:
    ws = await client.ws_connect(f"/ws/visit/{visit_id}", headers=headers)
    await ws.send_json({"type": "auth", "v": 1, "id": "1", "session": True})
    frame = await ws.receive(timeout=10)
    assert frame.type is WSMsgType.TEXT, frame
    kind = str(frame.json()["type"])
    if kind == "error":
        await ws.receive(timeout=10)  # the close frame that follows the explanation
    else:
        await ws.close()
    return kind, ws.close_code


async def test_a_signed_in_write_without_an_origin_header_is_accepted(client: TestClient[Any, Any]) -> None:
    # Non-browser clients send no Origin; the session's CSRF token still guards cookie writes.
    await login(client, "clinician")
    r = await client.post("/api/patients", json=PATIENT)
    assert r.status == 201, await r.text()


async def test_the_clinicians_socket_needs_this_sites_origin_even_with_a_valid_session(
    client: TestClient[Any, Any],
) -> None:
    await login(client, "clinician")
    visit_id = await _visit_id(client)
    assert await _first_frame_and_close(client, visit_id, {}) == ("error", CloseCode.ORIGIN_REJECTED)
    foreign = {"Origin": "https://evil.example"}
    assert await _first_frame_and_close(client, visit_id, foreign) == ("error", CloseCode.ORIGIN_REJECTED)
    own = {"Origin": str(client.make_url("")).rstrip("/")}
    kind, _ = await _first_frame_and_close(client, visit_id, own)
    assert kind == "join"
