"""Export: a FHIR R4 Bundle validated by a maintained FHIR model library, and a streamed ZIP of originals."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import queue
import threading
import time
import uuid
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from telehealth.records import captures, export
from telehealth.records.mediastore import FileMediaStore
from telehealth.records.models import AuditEvent, CaptureKind, MediaFile, Provenance
from telehealth.settings import Settings
from tests.conftest import Staff, login
from tests.review_seed import SeededVisit, make_patient, seed_visit


def validate_r4_bundle(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Validate the Bundle and every resource with fhir.resources (R4B models); return resources by reference."""
    Bundle.model_validate(data)
    by_ref = {}
    for entry in data["entry"]:
        resource = entry["resource"]
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        assert entry["fullUrl"] == f"urn:uuid:{resource['id']}"
        by_ref[entry["fullUrl"]] = resource
    return by_ref


def references(node: Any) -> list[str]:
    """Every Reference.reference anywhere in a resource."""
    if isinstance(node, dict):
        own = [node["reference"]] if isinstance(node.get("reference"), str) else []
        return own + [r for v in node.values() for r in references(v)]
    if isinstance(node, list):
        return [r for v in node for r in references(v)]
    return []


@pytest.fixture
async def seeded(db: async_sessionmaker[AsyncSession], staff: Staff, settings: Settings) -> SeededVisit:
    store = FileMediaStore(settings.media_dir)
    async with db() as s, s.begin():
        p = await make_patient(s, "FHIR-1", created_by=staff.clinician)
        seeded = await seed_visit(
            s,
            store,
            patient_id=p.id,
            clinician_id=staff.clinician,
            scheduled_at=datetime(2026, 2, 2, 10, tzinfo=UTC),
            steps=("rest", "smile_open"),
            clip_steps=("smile_open",),
            flags={"rest": ["roll"]},
        )
        # A retake: the superseded still stays in the ZIP but not in the FHIR record.
        retake = await captures.new_take(
            s, visit_id=seeded.visit.id, step_id="rest", kind=CaptureKind.STILL, created_by=staff.clinician
        )
        m = await captures.add_media(
            s,
            store,
            visit_id=seeded.visit.id,
            capture_id=retake.id,
            content=b"\x89PNG second take",
            info=captures.MediaInfo("image/png", Provenance.DEVICE, 360, 480),
            primary=True,
        )
        seeded.media[str(m.id)] = b"\x89PNG second take"
        seeded.stills["rest"] = retake.id
    return seeded


async def test_fhir_bundle_validates_and_links_media_report_and_grades(
    client: TestClient[Any, Any], seeded: SeededVisit, db: async_sessionmaker[AsyncSession]
) -> None:
    await login(client, "clinician")
    vid = seeded.visit.id
    sb = {
        "resting": {"eye": 1, "cheek": 1, "mouth": 0},
        "voluntary": dict.fromkeys(("brow_lift", "gentle_eye_closure", "open_mouth_smile", "snarl", "lip_pucker"), 4),
        "synkinesis": dict.fromkeys(("brow_lift", "gentle_eye_closure", "open_mouth_smile", "snarl", "lip_pucker"), 1),
    }
    assert (await client.post(f"/api/visits/{vid}/grades", json={"scale": "sunnybrook", "items": sb})).status == 201
    await client.post(f"/api/visits/{vid}/grades", json={"scale": "house_brackmann", "items": {"grade": 3}})
    r = await client.get(f"/api/visits/{vid}/export/fhir")
    assert r.status == 200 and r.headers["Content-Type"].startswith("application/fhir+json")
    data = await r.json()
    by_ref = validate_r4_bundle(data)
    assert data["type"] == "collection"
    kinds = [res["resourceType"] for res in by_ref.values()]
    assert kinds.count("Media") == 3  # rest still (current take only), smile still, smile clip
    assert kinds.count("DiagnosticReport") == 1 and kinds.count("Observation") == 2
    assert all(ref in by_ref for res in by_ref.values() for ref in references(res)), "dangling reference"

    media = [res for res in by_ref.values() if res["resourceType"] == "Media"]
    assert [(m["view"]["coding"][0]["code"], m["type"]["coding"][0]["code"]) for m in media] == [
        ("rest", "image"),
        ("smile_open", "image"),
        ("smile_open", "video"),
    ]
    for m in media:
        content = m["content"]
        original = seeded.media[m["id"]]
        assert content["hash"] == base64.b64encode(hashlib.sha1(original).digest()).decode()
        assert content["size"] == len(original) and content["url"].endswith(f"/api/media/{m['id']}")
        assert m["status"] == "completed" and m["bodySite"]["coding"][0]["code"] == "89545001"
        assert by_ref[m["subject"]["reference"]]["resourceType"] == "Patient"
        assert by_ref[m["encounter"]["reference"]]["id"] == str(vid)
        assert by_ref[m["operator"]["reference"]]["resourceType"] == "Practitioner"
    clip = media[2]
    assert clip["frames"] == 30 and clip["duration"] == 2.0 and clip["width"] == 320
    assert "note" not in media[0]  # the flagged rest take was superseded by a clean retake
    report = next(res for res in by_ref.values() if res["resourceType"] == "DiagnosticReport")
    assert [x["link"]["reference"] for x in report["media"]] == [f"urn:uuid:{m['id']}" for m in media]
    obs = {o["code"]["coding"][0]["code"]: o for o in by_ref.values() if o["resourceType"] == "Observation"}
    assert obs["sunnybrook"]["valueInteger"] == 80 - 10 - 5  # voluntary 20x4, resting 2x5, synkinesis 5
    assert obs["house_brackmann"]["valueInteger"] == 3
    assert {d["reference"] for d in obs["sunnybrook"]["derivedFrom"]} == {f"urn:uuid:{m['id']}" for m in media}
    assert sorted(x["reference"] for x in report["result"]) == sorted(f"urn:uuid:{o['id']}" for o in obs.values())
    async with db() as s:
        (event,) = (await s.scalars(select(AuditEvent).where(AuditEvent.action == "export_fhir"))).all()
    assert event.object_id == str(vid)


async def test_fhir_export_refuses_a_file_that_no_longer_matches_its_hash(
    client: TestClient[Any, Any], seeded: SeededVisit, db: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    async with db() as s:
        clip_id = next(k for k, v in seeded.media.items() if v.startswith(b"\x1aE\xdf\xa3"))
        row = await s.get(MediaFile, uuid.UUID(clip_id))
        assert row is not None
    path = FileMediaStore(settings.media_dir).local_path(row.storage_key)
    path.write_bytes(path.read_bytes() + b"tampered")
    await login(client, "reviewer")
    r = await client.get(f"/api/visits/{seeded.visit.id}/export/fhir")
    assert r.status == 409 and "integrity" in (await r.json())["error"]["message"]


async def test_zip_holds_every_original_and_a_manifest_whose_hashes_match(
    client: TestClient[Any, Any], seeded: SeededVisit, db: async_sessionmaker[AsyncSession]
) -> None:
    await login(client, "reviewer")
    r = await client.get(f"/api/visits/{seeded.visit.id}/export/zip")
    assert r.status == 200 and r.headers["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(await r.read())) as zf:
        assert zf.testzip() is None
        manifest = json.loads(zf.read("manifest.json"))
        files = manifest["files"]
        for f in files:
            data = zf.read(f["path"])
            assert hashlib.sha256(data).hexdigest() == f["sha256"] and len(data) == f["size"]
            assert seeded.media[f["media_id"]] == data
        sums = zf.read("SHA256SUMS").decode().splitlines()
    async with db() as s:
        originals = (
            await s.scalars(
                select(MediaFile.id).where(MediaFile.visit_id == seeded.visit.id, MediaFile.is_thumbnail.is_(False))
            )
        ).all()
    # Every original of every take (superseded ones included), no thumbnails.
    assert {f["media_id"] for f in files} == {str(i) for i in originals} and len(files) == 6
    assert files[0]["step_id"] == "rest" and files[-1]["kind"] == "clip"
    assert sorted(f["current_take"] for f in files if f["step_id"] == "rest") == [False, False, True]
    assert len(sums) == len(files) and all(line.split("  ")[1].startswith("media/") for line in sums)
    assert all(manifest["mrn"] not in f["path"] for f in files)
    async with db() as s:
        (event,) = (await s.scalars(select(AuditEvent).where(AuditEvent.action == "export_zip"))).all()
    assert event.detail == {"files": len(files)}


def test_zip_writer_blocks_when_the_reader_lags_and_stops_when_told() -> None:
    q: queue.Queue[bytes | None] = queue.Queue(maxsize=2)
    stop = threading.Event()
    writer = export._QueueWriter(q, stop, flush_at=1024)
    outcome: list[str] = []

    def produce() -> None:
        try:
            for _ in range(1000):  # 1 MiB that must never sit in memory at once
                writer.write(b"y" * 1024)
            outcome.append("finished")
        except export._Aborted:
            outcome.append("aborted")

    t = threading.Thread(target=produce)
    t.start()
    while not q.full():
        time.sleep(0.01)
    time.sleep(0.2)
    assert q.qsize() == 2 and t.is_alive() and outcome == []  # blocked, holding two chunks
    stop.set()
    t.join(10)
    assert not t.is_alive() and outcome == ["aborted"]


async def test_zip_stream_closes_cleanly_when_the_client_goes_away(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    chunk = b"x" * (1024 * 1024)
    big.write_bytes(chunk * 8)
    sha = hashlib.sha256(chunk * 8).hexdigest()
    stream = export.stream_zip([("media/big.bin", big, sha)], {"files": []}, max_chunks=2)
    assert len(await anext(stream)) <= 512 * 1024
    await asyncio.wait_for(stream.aclose(), 10)  # returns only once the producer thread has stopped
    whole = b"".join([c async for c in export.stream_zip([("media/big.bin", big, sha)], {"files": []})])
    with zipfile.ZipFile(io.BytesIO(whole)) as zf:
        assert zf.read("media/big.bin") == chunk * 8


async def test_the_zip_stream_carries_the_security_headers(client: TestClient[Any, Any], seeded: SeededVisit) -> None:
    await login(client, "reviewer")
    r = await client.get(f"/api/visits/{seeded.visit.id}/export/zip")
    assert r.status == 200
    assert r.headers["Cache-Control"] == "no-store" and r.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'self'" in r.headers["Content-Security-Policy"]
    await r.read()
