"""Capture API end to end: a real aiortc sender -> /capture/peer -> begin/take/skip -> records."""

from __future__ import annotations

import asyncio
import io
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import av
from aiohttp.test_utils import TestClient
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from PIL import Image, ImageStat
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from telehealth.app import signaling_settings
from telehealth.capture.ice import rtc_ice_servers
from telehealth.keys import CAPTURE_TAKES
from telehealth.records.consent import CONSENT_VERSION
from telehealth.records.mediastore import FileMediaStore
from telehealth.records.models import AuditEvent, Capture, MediaFile, Visit
from telehealth.settings import Settings
from telehealth.signaling import turn
from tests.capture.sender import ExpressiveTrack
from tests.conftest import login, with_settings

PEAK_AT = 1.65  # seconds after the step begins: the synthetic face is at its peak (1.5-1.8 s)


@dataclass
class VisitCtx:
    visit_id: str
    patient_id: str
    patient: dict[str, str]  # headers of the patient's bearer session


async def new_visit(client: TestClient[Any, Any], mrn: str = "CAP1", consent: bool | None = True) -> VisitCtx:
    """As the signed-in clinician: a patient, a visit, a join link; then the patient's session."""
    p = await (
        await client.post(
            "/api/patients",
            json={"mrn": mrn, "given_name": "Ana", "family_name": "Test", "birth_date": "1980-02-03"},
        )
    ).json()
    v = await (
        await client.post("/api/visits", json={"patient_id": p["id"], "scheduled_at": datetime.now(UTC).isoformat()})
    ).json()
    token = (await (await client.post(f"/api/visits/{v['id']}/join-link")).json())["token"]
    r = await client.post(f"/api/join/{token}/session", json={})
    assert r.status == 201, await r.text()
    patient = {"Authorization": f"Bearer {(await r.json())['token']}"}
    if consent is not None:
        r = await client.post(
            "/api/patient/consent",
            json={"capture": consent, "consent_version": CONSENT_VERSION, "signed_name": "Ana Test"},
            headers=patient,
        )
        assert r.status == 200, await r.text()
    return VisitCtx(v["id"], p["id"], patient)


async def start_capture(client: TestClient[Any, Any], ctx: VisitCtx) -> dict[str, Any]:
    """POST /capture/start with the default protocol."""
    r = await client.post(f"/api/visits/{ctx.visit_id}/capture/start", json={})
    assert r.status == 200, await r.text()
    body: dict[str, Any] = await r.json()
    return body


async def status(client: TestClient[Any, Any], ctx: VisitCtx) -> dict[str, Any]:
    """GET the capture status as the clinician."""
    r = await client.get(f"/api/visits/{ctx.visit_id}/capture")
    assert r.status == 200, await r.text()
    body: dict[str, Any] = await r.json()
    return body


async def wait_for(client: TestClient[Any, Any], ctx: VisitCtx, ready: Any, timeout: float = 15) -> dict[str, Any]:
    """Poll the status until ready(status) holds."""
    async with asyncio.timeout(timeout):
        while not ready(s := await status(client, ctx)):
            await asyncio.sleep(0.1)
    return s


async def offer_camera(client: TestClient[Any, Any], ctx: VisitCtx, track: ExpressiveTrack) -> RTCPeerConnection:
    """The patient's sender offers its camera through the API, as the browser will."""
    sender = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    sender.addTransceiver(track, direction="sendonly")
    await sender.setLocalDescription(await sender.createOffer())
    r = await client.post(
        f"/api/visits/{ctx.visit_id}/capture/peer", json={"sdp": sender.localDescription.sdp}, headers=ctx.patient
    )
    assert r.status == 200, await r.text()
    await sender.setRemoteDescription(RTCSessionDescription(sdp=(await r.json())["sdp"], type="answer"))
    return sender


def band_means(image: Image.Image) -> tuple[float, float]:
    """Mean luma of the left and right edge strips at the marker's height."""
    gray = image.convert("L")
    w, h = gray.size
    left = gray.crop((0, h // 3 + 4, w // 10, 2 * h // 3 - 4))
    right = gray.crop((w - w // 10, h // 3 + 4, w, 2 * h // 3 - 4))
    return ImageStat.Stat(left).mean[0], ImageStat.Stat(right).mean[0]


def mouth(image: Image.Image) -> float:
    """Mean luma at the centre, where the synthetic mouth opens (dark) at the peak."""
    gray = image.convert("L")
    w, h = gray.size
    return float(ImageStat.Stat(gray.crop((w // 2 - 20, h // 2 - 20, w // 2 + 20, h // 2 + 20))).mean[0])


async def step(client: TestClient[Any, Any], ctx: VisitCtx, track: ExpressiveTrack, step_id: str) -> dict[str, Any]:
    """Begin a step, let the face move, take at the peak; returns the take's body."""
    track.expression_start = None
    await asyncio.sleep(0.4)  # the face at rest when the step begins (its baseline)
    r = await client.post(f"/api/visits/{ctx.visit_id}/capture/steps/{step_id}/begin")
    assert r.status == 200, await r.text()
    assert (await r.json())["step_id"] == step_id
    track.expression_start = time.monotonic()
    await asyncio.sleep(PEAK_AT)
    clicked = time.perf_counter()
    r = await client.post(f"/api/visits/{ctx.visit_id}/capture/steps/{step_id}/take")
    answered_ms = (time.perf_counter() - clicked) * 1000
    assert r.status == 200, await r.text()
    print(f"take {step_id}: answered {answered_ms:.0f} ms after the click (client side)")
    body: dict[str, Any] = await r.json()
    return body


async def test_capture_end_to_end(
    client: TestClient[Any, Any],
    db: async_sessionmaker[AsyncSession],
    settings: Settings,
    caplog: Any,
) -> None:
    caplog.set_level(logging.INFO, logger="telehealth.handlers.capture.takes")
    await login(client, "clinician")
    ctx = await new_visit(client)
    started = await start_capture(client, ctx)
    ids = [s["id"] for s in started["protocol"]["steps"]]
    assert started["protocol"]["id"] == "default-facial-palsy" and ids[0] == "rest" and len(ids) == 10
    assert (await status(client, ctx))["peer"] == "none"

    track = ExpressiveTrack(640, 480)
    sender = await offer_camera(client, ctx, track)
    try:
        await wait_for(client, ctx, lambda s: s["peer"] == "receiving")
        await asyncio.sleep(2.0)  # past the stream's quality ramp: no still from the first frames
        rest = await step(client, ctx, track, "rest")
        first = await step(client, ctx, track, "smile_open")
        retake = await step(client, ctx, track, "smile_open")
        s = await wait_for(
            client, ctx, lambda s: all(t["status"] != "pending" for st in s["steps"] for t in st["takes"])
        )
        assert s["current_step"] == "smile_open"
    finally:
        await sender.close()

    store = FileMediaStore(settings.media_dir)
    for take in (rest, first, retake):
        still = take["still"]
        assert still["status"] == "stored" and still["kind"] == "still"
        assert still["quality"]["source"] == "stream" and still["quality"]["width"] == 640
        assert take["clip"]["status"] == "pending" and take["clip"]["media"] == []  # cut after the post-roll
        primary = [m for m in still["media"] if m["is_primary"]]
        thumbs = [m for m in still["media"] if m["is_thumbnail"]]
        assert len(primary) == len(thumbs) == 1
        assert primary[0]["provenance"] == "stream" and primary[0]["url"] == f"/api/media/{primary[0]['id']}"
        png = Image.open(io.BytesIO(await store.read(primary[0]["sha256"])))
        assert png.format == "PNG" and png.size == (640, 480) == (primary[0]["width"], primary[0]["height"])
        left, right = band_means(png)
        assert left > 200 and right < 160, "marker must stay on the left: never mirrored"
        thumb = Image.open(io.BytesIO(await store.read(thumbs[0]["sha256"])))
        assert thumb.format == "JPEG" and thumb.width == 320
        assert await store.verify(primary[0]["sha256"]) and await store.verify(thumbs[0]["sha256"])
    smile = Image.open(
        io.BytesIO(await store.read(next(m for m in first["still"]["media"] if m["is_primary"])["sha256"]))
    )
    assert mouth(smile) < 50, "the smile still is the peak frame (mouth open)"

    by_step = {st["id"]: st for st in s["steps"]}
    assert [t["kind"] for t in by_step["rest"]["takes"]] == ["still", "clip"]
    smile_takes = by_step["smile_open"]["takes"]
    assert len(smile_takes) == 4  # two takes x (still, clip): the retake kept the first
    superseded = {t["capture_id"]: t["superseded"] for t in smile_takes}
    assert superseded[first["still"]["capture_id"]] and superseded[first["clip"]["capture_id"]]
    assert not superseded[retake["still"]["capture_id"]] and not superseded[retake["clip"]["capture_id"]]

    clip_take = next(t for t in smile_takes if t["capture_id"] == retake["clip"]["capture_id"])
    assert clip_take["status"] == "stored", clip_take
    (clip,) = clip_take["media"]
    assert clip["provenance"] == "stream" and clip["is_primary"] and clip["content_type"] == "video/webm"
    assert await store.verify(clip["sha256"])
    with av.open(io.BytesIO(await store.read(clip["sha256"]))) as container:
        assert container.streams.video[0].codec_context.name == "vp8"
        frames = [f.to_image() for f in container.decode(video=0)]
    assert (frames[0].width, frames[0].height) == (640, 480)
    # rest -> peak -> relax: the click was at the peak, the post-roll carries the clip past it.
    assert mouth(frames[0]) > 60 and min(mouth(f) for f in frames) < 50 and mouth(frames[-1]) > 60
    assert clip["duration_ms"] >= (PEAK_AT + 1.5 - 0.3) * 1000

    async with db() as session:
        rows = (await session.scalars(select(Capture).where(Capture.visit_id == uuid.UUID(ctx.visit_id)))).all()
        media = (await session.scalars(select(MediaFile))).all()
        audits = (await session.scalars(select(AuditEvent).where(AuditEvent.action == "capture"))).all()
    assert sorted(c.step_id for c in rows) == ["rest", "rest"] + ["smile_open"] * 4
    assert len(media) == 3 * 2 + 3 and all(str(m.visit_id) == ctx.visit_id for m in media)
    assert all(m.capture_id in {c.id for c in rows} for m in media)
    assert len(audits) == 3 and all(a.patient_id == uuid.UUID(ctx.patient_id) for a in audits)

    # The patient's device copy becomes primary; the stream copy stays.
    jpeg = io.BytesIO()
    Image.new("RGB", (1280, 720), (120, 120, 120)).save(jpeg, "JPEG")
    r = await client.post(
        f"/api/captures/{retake['still']['capture_id']}/upload",
        data=jpeg.getvalue(),
        headers={**ctx.patient, "Content-Type": "image/jpeg", "Idempotency-Key": "device-1"},
    )
    assert r.status == 201, await r.text()
    s = await status(client, ctx)
    files = next(t for t in s["steps"][5]["takes"] if t["capture_id"] == retake["still"]["capture_id"])
    assert {(m["provenance"], m["is_primary"], m["is_thumbnail"]) for m in files["media"]} == {
        ("stream", False, False),
        ("stream", False, True),
        ("device", True, False),
        ("device", False, True),
    }
    assert files["quality"]["source"] == "device" and files["quality"]["stream"]["source"] == "stream"

    # Skipping every other required step completes the set; the optional one is not needed.
    assert not s["complete"]
    for step_id in ids[1:9]:
        if step_id == "smile_open":
            continue
        r = await client.post(f"/api/visits/{ctx.visit_id}/capture/steps/{step_id}/skip", json={"reason": "pain"})
        assert r.status == 200, await r.text()
        skipped = await r.json()
        assert skipped["still"]["status"] == skipped["clip"]["status"] == "skipped"
    s = await status(client, ctx)
    # The patient's peer closed above: the registry dropped it (it used to linger with its last step).
    assert s["complete"] and s["current_step"] is None and s["peer"] == "none"
    assert by_step["spontaneous"]["takes"] == [] and s["steps"][2]["takes"][0]["skip_reason"] == "pain"
    patient_view = await client.get(f"/api/visits/{ctx.visit_id}/capture", headers=ctx.patient)
    assert patient_view.status == 200 and (await patient_view.json())["complete"]

    latencies = [r.getMessage() for r in caplog.records if "after the click" in r.getMessage()]
    print("\n".join(latencies))
    assert len(latencies) == 3


async def test_replacing_the_peer_closes_the_old_one_and_shutdown_closes_all(
    client: TestClient[Any, Any],
) -> None:
    await login(client, "clinician")
    ctx = await new_visit(client)
    await start_capture(client, ctx)
    peers = client.app[CAPTURE_TAKES].peers
    senders = []
    try:
        senders.append(await offer_camera(client, ctx, ExpressiveTrack(320, 240)))
        old = peers.get(uuid.UUID(ctx.visit_id))
        assert old is not None
        senders.append(await offer_camera(client, ctx, ExpressiveTrack(320, 240)))
        new = peers.get(uuid.UUID(ctx.visit_id))
        assert new is not None and new is not old
        async with asyncio.timeout(10):
            await old.peer.wait_closed()
        await wait_for(client, ctx, lambda s: s["peer"] == "receiving")
    finally:
        for sender in senders:
            await sender.close()
    await peers.close()
    assert new.peer_state == "closed" and peers.get(uuid.UUID(ctx.visit_id)) is None


async def test_begin_without_stream_and_take_leaves_pending_takes(client: TestClient[Any, Any]) -> None:
    await login(client, "clinician")
    ctx = await new_visit(client)
    r = await client.post(f"/api/visits/{ctx.visit_id}/capture/steps/rest/begin")
    assert r.status == 409 and (await r.json())["error"]["code"] == "invalid_state"  # not started
    await start_capture(client, ctx)
    r = await client.post(f"/api/visits/{ctx.visit_id}/capture/steps/rest/begin")
    assert r.status == 409 and (await r.json())["error"]["code"] == "no_stream"
    r = await client.post(f"/api/visits/{ctx.visit_id}/capture/steps/no_such_step/take")
    assert r.status == 404
    r = await client.post(f"/api/visits/{ctx.visit_id}/capture/steps/rest/take")
    body = await r.json()
    assert r.status == 200 and body["still"]["status"] == "pending" and body["clip"]["status"] == "pending"
    assert body["still"]["media"] == [] and body["still"]["quality"] is None
    r = await client.post(f"/api/visits/{ctx.visit_id}/capture/steps/rest/skip", json={"reason": ""})
    assert r.status == 400


async def test_an_ended_visit_takes_no_more_captures_and_keeps_its_series(client: TestClient[Any, Any]) -> None:
    await login(client, "clinician")
    ctx = await new_visit(client)
    await start_capture(client, ctx)
    base = f"/api/visits/{ctx.visit_id}/capture"
    r = await client.post(f"{base}/steps/rest/skip", json={"reason": "patient unable"})
    assert r.status == 200
    before = await status(client, ctx)
    r = await client.post(f"/api/visits/{ctx.visit_id}/cancel", json={"reason": "done"})
    assert r.status == 200
    for path, body in (
        (f"{base}/steps/rest/take", None),
        (f"{base}/steps/rest/begin", None),
        (f"{base}/steps/rest/skip", {"reason": "x"}),
    ):
        r = await client.post(path, json=body)
        assert r.status == 409 and (await r.json())["error"]["code"] == "invalid_state", path
    assert await status(client, ctx) == before  # nothing superseded the stored series


async def test_declined_consent_blocks_every_capture_call_but_status(client: TestClient[Any, Any]) -> None:
    await login(client, "clinician")
    ctx = await new_visit(client, consent=False)
    base = f"/api/visits/{ctx.visit_id}/capture"
    for path, headers in (
        (f"{base}/start", None),
        (f"{base}/steps/rest/begin", None),
        (f"{base}/steps/rest/take", None),
        (f"{base}/peer", ctx.patient),
    ):
        r = await client.post(path, json={"sdp": "v=0"} if headers else {}, headers=headers)
        assert r.status == 409 and (await r.json())["error"]["code"] == "consent_required", path
    r = await client.post(f"{base}/steps/rest/skip", json={"reason": "declined"})
    assert r.status == 409 and (await r.json())["error"]["code"] == "consent_required"
    s = await status(client, ctx)
    assert s["protocol"] is None and s["peer"] == "none" and s["steps"] == [] and not s["complete"]


async def test_patient_is_bound_to_their_own_visit(client: TestClient[Any, Any]) -> None:
    await login(client, "clinician")
    mine = await new_visit(client, "CAP-A")
    other = await new_visit(client, "CAP-B")
    await start_capture(client, other)
    r = await client.post(f"/api/visits/{other.visit_id}/capture/peer", json={"sdp": "v=0"}, headers=mine.patient)
    assert r.status == 404
    assert (await client.get(f"/api/visits/{other.visit_id}/capture", headers=mine.patient)).status == 404
    r = await client.post(f"/api/visits/{mine.visit_id}/capture/peer", json={"sdp": "not sdp"}, headers=mine.patient)
    assert r.status == 400 and "offer" in (await r.json())["error"]["message"]


async def test_command_on_a_process_without_the_runner_is_refused(
    client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]
) -> None:
    await login(client, "clinician")
    ctx = await new_visit(client)
    await start_capture(client, ctx)
    # Another process answered the patient's latest offer (as the visit records it).
    async with db() as s, s.begin():
        visit = await s.get(Visit, uuid.UUID(ctx.visit_id))
        assert visit is not None
        visit.capture_instance = "4242-elsewhere"
    for action in ("begin", "take"):
        r = await client.post(f"/api/visits/{ctx.visit_id}/capture/steps/rest/{action}")
        error = (await r.json())["error"]
        assert r.status == 409 and error["code"] == "capture_peer_elsewhere", action
        assert "route" in error["message"]


def test_turn_credentials_follow_coturn_use_auth_secret(settings: Settings) -> None:
    import base64
    import hashlib
    import hmac

    configured = with_settings(
        settings, stun_urls=("stun:stun.example.org:3478",), turn_urls=("turn:turn.example.org:3478",), turn_secret="s3"
    )

    def ice_servers(settings: Settings, name: str, now: float | None = None) -> list[RTCIceServer]:
        return rtc_ice_servers(turn.ice_servers(signaling_settings(settings), name, now))

    stun, turn_server = ice_servers(configured, "capture-x", now=1000)
    assert stun.urls == ["stun:stun.example.org:3478"] and stun.username is None
    assert turn_server.username == f"{1000 + configured.turn_ttl_seconds}:capture-x"
    expected = base64.b64encode(hmac.new(b"s3", turn_server.username.encode(), hashlib.sha1).digest()).decode()
    assert turn_server.credential == expected
    assert ice_servers(settings, "capture-x") == []  # no default public STUN server
