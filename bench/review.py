"""Benchmark of the review API at clinic scale: 10,000 patients, 100,000 media rows, on PostgreSQL.

Seeds a dedicated schema with COPY, serves the real app (create_app) on a local port, signs in a
reviewer and times GET /api/patients/{id}/timeline and GET /api/visits/{id}/montage end to end over
HTTP (session lookup, queries, audit write, JSON). The schema is dropped at the end.

    PYTHONPATH=. python -m bench.review [--requests 500] [--concurrency 8] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg  # type: ignore[import-untyped]
from aiohttp.test_utils import TestServer

from telehealth.app import create_app
from telehealth.capture import default_protocol
from telehealth.records.accounts import create_user
from telehealth.records.db import make_engine, make_sessionmaker
from telehealth.records.migrate import upgrade
from telehealth.records.models import Role
from telehealth.settings import Settings

PG = "postgresql://postgres@127.0.0.1:5432/test"
SCHEMA = "bench_review"
PASSWORD = "bench password 123"
STILL_STEPS = [s.id for s in default_protocol().steps if s.still]  # 9 stills, each with a thumbnail
CLIP_STEPS = [s.id for s in default_protocol().steps if s.clip]  # 10 clips
MEDIA_PER_VISIT = 2 * len(STILL_STEPS) + len(CLIP_STEPS)  # 28


@dataclass
class Seeded:
    """Ids to sample requests from, and row counts for the report."""

    patients_with_media: list[uuid.UUID] = field(default_factory=list)
    captured_visits: list[uuid.UUID] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


def _ts(rng: random.Random) -> datetime:
    return datetime(2023, 1, 1, tzinfo=UTC) + timedelta(minutes=rng.randrange(3 * 365 * 24 * 60))


async def seed(conn: asyncpg.Connection, clinician: uuid.UUID, *, patients: int, media: int) -> Seeded:
    """Bulk-insert patients, visits, captures and media rows with COPY."""
    rng = random.Random(1)
    out = Seeded()
    captured_visits = -(-media // MEDIA_PER_VISIT)
    visits_per_patient = 2  # before and after surgery
    pat_rows, visit_rows, cap_rows, media_rows = [], [], [], []
    for i in range(patients):
        pid = uuid.uuid4()
        born = date(1940, 1, 1) + timedelta(days=rng.randrange(70 * 365))
        side = rng.choice(["left", "right", "bilateral", "unknown"])
        pat_rows.append((pid, f"MRN{i:06d}", f"Given{i}", f"Family{i % 997}", born, side, _ts(rng)))
        has_media = i * visits_per_patient < captured_visits
        for _ in range(visits_per_patient if has_media else 1):
            vid = uuid.uuid4()
            at = _ts(rng)
            visit_rows.append((vid, pid, clinician, at, "ended" if has_media else "scheduled", False, at))
            if not has_media or len(out.captured_visits) >= captured_visits:
                continue
            out.captured_visits.append(vid)
            for step in CLIP_STEPS:
                for kind in ("still", "clip") if step in STILL_STEPS else ("clip",):
                    cid = uuid.uuid4()
                    cap_rows.append((cid, vid, step, kind, "stored", at, clinician))
                    files = [(False, kind)] + ([(True, kind)] if kind == "still" else [])
                    for thumb, k in files:
                        digest = hashlib.sha256(cid.bytes + bytes([thumb])).hexdigest()
                        ctype = "image/png" if k == "still" else "video/webm"
                        w, h = ((120, 160) if thumb else (1080, 1440)) if k == "still" else (1280, 720)
                        media_rows.append(
                            (
                                uuid.uuid4(),
                                vid,
                                cid,
                                digest,
                                rng.randrange(20_000, 4_000_000),
                                ctype,
                                w,
                                h,
                                5000 if k == "clip" else None,
                                150 if k == "clip" else None,
                                digest,
                                "derived" if thumb else rng.choice(["device", "device", "stream"]),
                                not thumb,
                                thumb,
                                at,
                            )
                        )
        if has_media:
            out.patients_with_media.append(pid)
    copy = conn.copy_records_to_table
    await copy(
        "patients",
        records=pat_rows,
        schema_name=SCHEMA,
        columns=["id", "mrn", "given_name", "family_name", "birth_date", "affected_side", "created_at"],
    )
    await copy(
        "visits",
        records=visit_rows,
        schema_name=SCHEMA,
        columns=["id", "patient_id", "clinician_id", "scheduled_at", "state", "join_requires_dob", "created_at"],
    )
    await copy(
        "captures",
        records=cap_rows,
        schema_name=SCHEMA,
        columns=["id", "visit_id", "step_id", "kind", "status", "created_at", "created_by"],
    )
    await copy(
        "media_files",
        records=media_rows,
        schema_name=SCHEMA,
        columns=[
            "id",
            "visit_id",
            "capture_id",
            "sha256",
            "size",
            "content_type",
            "width",
            "height",
            "duration_ms",
            "frames",
            "storage_key",
            "provenance",
            "is_primary",
            "is_thumbnail",
            "created_at",
        ],
    )
    await conn.execute("ANALYZE")
    out.counts = {"patients": len(pat_rows), "visits": len(visit_rows), "captures": len(cap_rows)}
    out.counts["media_files"] = len(media_rows)
    return out


def percentile(samples: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of samples."""
    ordered = sorted(samples)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))]


async def measure(n: int, concurrency: int, call: Callable[[int], Awaitable[None]]) -> tuple[list[float], float]:
    """Latencies in ms of n calls run by `concurrency` workers, and the wall time in s."""
    latencies: list[float] = []
    counter = iter(range(n))

    async def worker() -> None:
        for i in counter:
            t0 = time.perf_counter()
            await call(i)
            latencies.append((time.perf_counter() - t0) * 1000)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, time.perf_counter() - t0


def row(name: str, concurrency: int, lat: list[float], wall: float) -> str:
    """A markdown table row of a measurement."""
    return (
        f"| {name} | {concurrency} | {len(lat)} | {statistics.median(lat):.1f} | {percentile(lat, 95):.1f} "
        f"| {percentile(lat, 99):.1f} | {max(lat):.1f} | {len(lat) / wall:.0f} |"
    )


async def run(args: argparse.Namespace) -> None:
    """Create the schema, seed, serve, measure, report, drop."""
    admin = await asyncpg.connect(args.pg)
    await admin.execute(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE; CREATE SCHEMA "{SCHEMA}"')
    url = f"{args.pg.replace('postgresql://', 'postgresql+asyncpg://')}?search_path={SCHEMA}"
    try:
        t0 = time.perf_counter()
        await upgrade(url)
        engine = make_engine(url)
        async with make_sessionmaker(engine)() as s, s.begin():
            clinician = await create_user(s, "clin", "Dr. Bench", Role.CLINICIAN, PASSWORD)
            await create_user(s, "rev", "Reviewer", Role.REVIEWER, PASSWORD)
        await engine.dispose()
        conn = await asyncpg.connect(args.pg, server_settings={"search_path": SCHEMA})
        seeded = await seed(conn, clinician.id, patients=args.patients, media=args.media)
        await conn.close()
        seed_s = time.perf_counter() - t0
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(
                var_dir=Path(tmp), database_url=url, media_dir=Path(tmp) / "media", secret_key="bench-secret-key"
            )
            server = TestServer(create_app(settings))
            await server.start_server()
            try:
                report = await _measure(server, seeded, args)
            finally:
                await server.close()
    finally:
        if not args.keep:
            await admin.execute(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE')
        await admin.close()
    counts = ", ".join(f"{v:,} {k}" for k, v in seeded.counts.items())
    print(f"\nSeeded {counts} in {seed_s:.1f} s (schema {SCHEMA}, dropped afterwards: {not args.keep})\n")
    print("| endpoint | concurrency | requests | p50 ms | p95 ms | p99 ms | max ms | req/s |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(report))


async def _measure(server: TestServer, seeded: Seeded, args: argparse.Namespace) -> list[str]:
    base = str(server.make_url("")).rstrip("/")
    rng = random.Random(2)
    # unsafe=True: the session cookie comes from an IP address (127.0.0.1).
    async with aiohttp.ClientSession(base_url=base, cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        r = await http.post("/api/auth/login", json={"username": "rev", "password": PASSWORD})
        r.raise_for_status()

        async def get(path: str) -> None:
            async with http.get(path) as resp:
                resp.raise_for_status()
                await resp.read()

        patients = [rng.choice(seeded.patients_with_media) for _ in range(args.requests)]
        visits = [rng.choice(seeded.captured_visits) for _ in range(args.requests)]

        async def timeline(i: int) -> None:
            await get(f"/api/patients/{patients[i]}/timeline")

        async def montage(i: int) -> None:
            await get(f"/api/visits/{visits[i]}/montage")

        for i in range(30):  # warm up connections and caches
            await timeline(i)
            await montage(i)
        out = []
        for c in sorted({1, args.concurrency}):
            for name, call in (("timeline", timeline), ("montage", montage)):
                lat, wall = await measure(args.requests, c, call)
                out.append(row(f"GET {name}", c, lat, wall))
        sample: Any = await (await http.get(f"/api/visits/{visits[0]}/montage")).json()
        files = sum(len(t["media"]) for s in sample["steps"] for t in (s["still"], s["clip"]) if t)
        out.append(f"\n(one montage = {len(sample['steps'])} steps, {files} files; one timeline = 2 visits x 9 thumbs)")
        return out


def main() -> None:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pg", default=PG, help="PostgreSQL URL of the database to use (a schema is created in it)")
    p.add_argument("--patients", type=int, default=10_000)
    p.add_argument("--media", type=int, default=100_000)
    p.add_argument("--requests", type=int, default=500, help="requests per endpoint and concurrency level")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--keep", action="store_true", help="keep the schema for inspection")
    asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    main()
