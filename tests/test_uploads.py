"""Device uploads: validated, cleaned, idempotent, bound to the patient's own visit."""

from __future__ import annotations

import asyncio
import io
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import pytest
from aiohttp import StreamReader
from aiohttp.base_protocol import BaseProtocol
from aiohttp.test_utils import TestClient
from PIL import ExifTags, Image, ImageDraw, ImageStat
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from telehealth.capture.uploads import UploadIncomplete, UploadLimits, receive_body
from telehealth.keys import CAPTURE_UPLOADS
from telehealth.records.mediastore import FileMediaStore
from telehealth.records.models import AuditEvent, Capture, CaptureStatus, MediaFile
from telehealth.settings import Settings
from tests.capture.sender import render
from tests.test_capture_api import VisitCtx, login, new_visit, start_capture


async def pending_takes(client: TestClient[Any, Any], mrn: str = "UP1") -> tuple[VisitCtx, str, str]:
    """A visit whose 'rest' step was taken without a stream: still and clip wait for uploads."""
    await login(client, "clinician")
    ctx = await new_visit(client, mrn)
    await start_capture(client, ctx)
    body = await (await client.post(f"/api/visits/{ctx.visit_id}/capture/steps/rest/take")).json()
    assert body["still"]["status"] == body["clip"]["status"] == "pending"
    return ctx, body["still"]["capture_id"], body["clip"]["capture_id"]


def camera_jpeg(width: int = 640, height: int = 480, orientation: int = 1) -> bytes:
    """A phone-like JPEG: marker in the top-left corner, EXIF orientation and GPS position."""
    image = Image.new("RGB", (width, height), (90, 90, 90))
    ImageDraw.Draw(image).rectangle([0, 0, width // 8, height // 3], fill=(255, 255, 255))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = "PhoneCo"
    exif[ExifTags.IFD.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N",
        ExifTags.GPS.GPSLatitude: (52.0, 31.0, 12.0),
        ExifTags.GPS.GPSLongitudeRef: "E",
        ExifTags.GPS.GPSLongitude: (13.0, 24.0, 1.0),
    }
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90, exif=exif)
    return out.getvalue()


def webm_clip(seconds: float = 2.0, size: tuple[int, int] = (320, 240)) -> bytes:
    """A small VP8 WebM, as a browser's MediaRecorder makes."""
    out = io.BytesIO()
    with av.open(out, "w", format="webm") as container:
        stream = container.add_stream("libvpx", rate=30)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for i in range(round(seconds * 30)):
            frame = av.VideoFrame.from_image(render(size[0], size[1], (i % 30) / 29))
            frame.pts, frame.time_base = i, Fraction(1, 30)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out.getvalue()


async def upload(
    client: TestClient[Any, Any], ctx: VisitCtx, capture_id: str, data: Any, ctype: str, key: str | None = "k1"
) -> Any:
    """POST a raw upload as the patient."""
    headers = {**ctx.patient, "Content-Type": ctype}
    if key is not None:
        headers["Idempotency-Key"] = key
    return await client.post(f"/api/captures/{capture_id}/upload", data=data, headers=headers)


async def media_count(db: async_sessionmaker[AsyncSession]) -> int:
    async with db() as s:
        return int(await s.scalar(select(func.count()).select_from(MediaFile)) or 0)


async def test_jpeg_is_stored_upright_as_png_without_metadata_and_repeats_are_idempotent(
    client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    ctx, still_id, _ = await pending_takes(client)
    jpeg = camera_jpeg(orientation=6)  # the phone was held upright: rotate 90 degrees clockwise
    assert Image.open(io.BytesIO(jpeg)).getexif().get_ifd(ExifTags.IFD.GPSInfo)
    r = await upload(client, ctx, still_id, jpeg, "image/jpeg")
    assert r.status == 201, await r.text()
    media = await r.json()
    assert media["provenance"] == "device" and media["is_primary"] and not media["is_thumbnail"]
    assert media["content_type"] == "image/png" and (media["width"], media["height"]) == (480, 640)
    assert media["url"] == f"/api/media/{media['id']}"

    store = FileMediaStore(settings.media_dir)
    assert await store.verify(media["sha256"])
    stored = Image.open(io.BytesIO(await store.read(media["sha256"])))
    assert stored.format == "PNG" and stored.size == (480, 640)
    assert not stored.getexif() and not {"exif", "icc_profile", "xmp"} & set(stored.info)
    assert b"PhoneCo" not in await store.read(media["sha256"])
    # Rotated clockwise, the top-left marker is now top-right; a mirror would put it top-left.
    gray = stored.convert("L")
    assert ImageStat.Stat(gray.crop((420, 0, 480, 60))).mean[0] > 200
    assert ImageStat.Stat(gray.crop((0, 0, 60, 60))).mean[0] < 120

    count = await media_count(db)
    again = await upload(client, ctx, still_id, jpeg, "image/jpeg")
    assert again.status == 200 and (await again.json())["id"] == media["id"]
    assert await media_count(db) == count

    retake = await upload(client, ctx, still_id, camera_jpeg(800, 600), "image/jpeg", key="k2")
    assert retake.status == 201
    newer = await retake.json()
    assert newer["id"] != media["id"] and newer["is_primary"]
    status = await (await client.get(f"/api/visits/{ctx.visit_id}/capture", headers=ctx.patient)).json()
    take = next(t for t in status["steps"][0]["takes"] if t["capture_id"] == still_id)
    assert take["status"] == "stored" and take["quality"]["source"] == "device"
    files = take["media"]
    assert [m["id"] for m in files if m["is_primary"]] == [newer["id"]]
    assert len([m for m in files if m["is_thumbnail"]]) == 2 and len(files) == 4
    async with db() as s:
        audits = (await s.scalars(select(AuditEvent).where(AuditEvent.action == "upload"))).all()
    assert len(audits) == 2 and all(a.actor_role == "patient" for a in audits)


async def test_clip_upload_is_checked_with_pyav_and_remuxed(client: TestClient[Any, Any], settings: Settings) -> None:
    ctx, still_id, clip_id = await pending_takes(client)
    clip = webm_clip()
    r = await upload(client, ctx, clip_id, clip, "video/webm;codecs=vp8")
    assert r.status == 201, await r.text()
    media = await r.json()
    assert media["content_type"] == "video/webm" and media["provenance"] == "device"
    assert (media["width"], media["height"]) == (320, 240) and 1800 <= media["duration_ms"] <= 2100
    data = await FileMediaStore(settings.media_dir).read(media["sha256"])
    with av.open(io.BytesIO(data)) as container:
        assert container.streams.video[0].codec_context.name == "vp8"
        assert len(list(container.decode(video=0))) == 60
    # A still capture takes images only; a WebM declared as MP4 is refused.
    assert (await upload(client, ctx, still_id, clip, "video/webm", key="v")).status == 415
    assert (await upload(client, ctx, clip_id, clip, "video/mp4", key="m")).status == 415


async def test_wrong_or_unsupported_types_are_415(
    client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]
) -> None:
    ctx, still_id, clip_id = await pending_takes(client)
    png = io.BytesIO()
    Image.new("RGB", (640, 480)).save(png, "PNG")
    cases = [
        (still_id, png.getvalue(), "image/jpeg"),  # PNG bytes declared as JPEG
        (clip_id, b"hello, this is not a video at all" * 10, "video/webm"),
        (still_id, b"GIF89a" + b"\0" * 100, "image/gif"),
        (still_id, b"\xff\xd8\xff\xe0 truncated jpeg", "image/jpeg"),  # right magic, not an image
    ]
    for n, (capture_id, data, ctype) in enumerate(cases):
        r = await upload(client, ctx, capture_id, data, ctype, key=f"bad{n}")
        assert r.status == 415, (ctype, await r.text())
        assert (await r.json())["error"]["code"] == "unsupported_media"
    tiny = io.BytesIO()
    Image.new("RGB", (200, 150)).save(tiny, "PNG")
    assert (await upload(client, ctx, still_id, tiny.getvalue(), "image/png", key="tiny")).status == 415
    assert (await upload(client, ctx, still_id, png.getvalue(), "image/png", key=None)).status == 400
    assert await media_count(db) == 0
    async with db() as s:
        assert (await s.get(Capture, uuid.UUID(still_id))).status is CaptureStatus.PENDING  # type: ignore[union-attr]


async def test_too_large_is_413_with_or_without_content_length(
    client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]
) -> None:
    ctx, still_id, clip_id = await pending_takes(client)
    client.app[CAPTURE_UPLOADS].limits = UploadLimits(still_bytes=50_000, clip_bytes=60_000)
    big = camera_jpeg(2000, 1500) + b"\0" * 60_000

    async def chunked() -> Any:  # no Content-Length: the limit must hold while streaming
        for i in range(0, len(big), 8192):
            yield big[i : i + 8192]

    r = await upload(client, ctx, still_id, big, "image/jpeg")
    assert r.status == 413 and (await r.json())["error"]["code"] == "too_large"
    r = await upload(client, ctx, still_id, chunked(), "image/jpeg", key="k2")
    assert r.status == 413
    r = await upload(client, ctx, clip_id, webm_clip() + b"\0" * 60_000, "video/webm", key="k3")
    assert r.status == 413
    assert await media_count(db) == 0


async def test_uploads_are_bound_to_the_patients_own_visit(client: TestClient[Any, Any]) -> None:
    ctx, still_id, _ = await pending_takes(client)
    other = await new_visit(client, "UP-OTHER")
    jpeg = camera_jpeg()
    assert (await upload(client, other, still_id, jpeg, "image/jpeg")).status == 404
    assert (await upload(client, ctx, str(uuid.uuid4()), jpeg, "image/jpeg")).status == 404
    r = await client.post(
        f"/api/captures/{still_id}/upload", data=jpeg, headers={"Content-Type": "image/jpeg", "Idempotency-Key": "c"}
    )
    assert r.status == 403  # the signed-in clinician: patient-only route


async def test_cut_off_upload_stores_nothing_and_a_retry_completes(
    client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession], settings: Settings, caplog: Any
) -> None:
    caplog.set_level(logging.INFO, logger="telehealth.handlers.capture.uploads")
    ctx, still_id, _ = await pending_takes(client)
    jpeg = camera_jpeg(1600, 1200)
    assert (await upload(client, ctx, still_id, jpeg, "image/jpeg", key="first")).status == 201
    stored_before = await media_count(db)

    retake = camera_jpeg(1200, 900)
    _, writer = await asyncio.open_connection(client.host, client.port)
    head = (
        f"POST /api/captures/{still_id}/upload HTTP/1.1\r\nHost: {client.host}:{client.port}\r\n"
        f"Authorization: {ctx.patient['Authorization']}\r\nContent-Type: image/jpeg\r\n"
        f"Idempotency-Key: second\r\nContent-Length: {len(retake)}\r\n\r\n"
    )
    writer.write(head.encode() + retake[: len(retake) // 2])
    await writer.drain()
    uploads_dir = settings.var_dir / "uploads"
    async with asyncio.timeout(10):  # until the server is reading the body into its work dir
        while not any(uploads_dir.iterdir()):
            await asyncio.sleep(0.02)
    writer.close()
    await writer.wait_closed()
    async with asyncio.timeout(10):  # until the server has noticed the cut and cleaned up
        while any(uploads_dir.iterdir()) or not any("incomplete" in r.getMessage() for r in caplog.records):
            await asyncio.sleep(0.02)
    assert await media_count(db) == stored_before  # nothing half-stored, nothing lost

    r = await upload(client, ctx, still_id, retake, "image/jpeg", key="second")
    assert r.status == 201 and (await r.json())["width"] == 1200
    assert await media_count(db) == stored_before + 2  # the retry's still and its thumbnail


async def test_a_broken_or_short_body_is_incomplete(tmp_path: Path) -> None:
    """Servers that do not cancel handlers on disconnect see the cut as a read error instead."""
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(1) as executor:
        broken = StreamReader(BaseProtocol(loop), 2**16, loop=loop)
        broken.feed_data(b"\xff\xd8\xff" + b"x" * 1000)
        broken.set_exception(ConnectionResetError("Connection lost"))
        with pytest.raises(UploadIncomplete):
            await receive_body(broken, tmp_path / "a", limit=10_000, declared_length=None, executor=executor)
        short = StreamReader(BaseProtocol(loop), 2**16, loop=loop)
        short.feed_data(b"\xff\xd8\xff" + b"x" * 1000)
        short.feed_eof()
        with pytest.raises(UploadIncomplete):
            await receive_body(short, tmp_path / "b", limit=10_000, declared_length=2000, executor=executor)
