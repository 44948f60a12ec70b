"""SIGTERM ends a real server within its shutdown budget, even with open sockets and Redis frozen."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import time
from datetime import date
from pathlib import Path

import aiohttp
import pytest
from redis.asyncio import Redis

from telehealth.records import patients
from telehealth.records import visits as visits_records
from telehealth.records.accounts import create_user
from telehealth.records.db import make_engine, make_sessionmaker
from telehealth.records.models import AffectedSide, Role
from telehealth.records.types import utcnow
from telehealth.signaling.redisbroker import RedisBroker
from tests.conftest import IN_CI
from tests.signaling.procs import ROOT, ThrowawayRedis, free_port

SHUTDOWN_BUDGET = 4


def _need_redis_server() -> None:
    if shutil.which("redis-server") is None:
        if IN_CI:
            pytest.fail("redis-server is required in CI")
        pytest.skip("redis-server not installed")


async def _run(*args: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "telehealth", *args, cwd=ROOT, env={**os.environ, **env},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


async def _ready(base: str, proc: asyncio.subprocess.Process) -> None:
    async with aiohttp.ClientSession() as http, asyncio.timeout(30):
        while True:
            try:
                async with http.get(f"{base}/readyz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            assert proc.returncode is None, "server process died at start"
            await asyncio.sleep(0.1)


async def _patients_in_rooms(var: Path, base: str, http: aiohttp.ClientSession, visits: int) -> list[str]:
    """Patient bearer sessions of ``visits`` visits of today (each will open a room, in Redis too)."""
    engine = make_engine(f"sqlite+aiosqlite:///{var / 'telehealth.sqlite3'}")
    tokens = []
    async with make_sessionmaker(engine)() as db, db.begin():
        doc = await create_user(db, "dr-term", "Dr. Term", Role.CLINICIAN, "a long password")
        for i in range(visits):
            p = await patients.create_patient(
                db, mrn=f"T-{i}", given_name="Ter", family_name="Minus", birth_date=date(1980, 1, 1),
                affected_side=AffectedSide.LEFT, created_by=doc.id,
            )  # fmt: skip
            v = await visits_records.schedule_visit(db, patient_id=p.id, clinician_id=doc.id, scheduled_at=utcnow())
            tokens.append(visits_records.issue_join_link(v, valid_hours=2))
    await engine.dispose()
    bearers = []
    for token in tokens:
        async with http.post(f"{base}/api/join/{token}/session", json={}) as r:
            assert r.status == 201, await r.text()
            bearers.append((await r.json())["token"])
    return bearers


async def test_sigterm_ends_the_server_in_time_with_sockets_open_and_redis_frozen(tmp_path: Path) -> None:
    _need_redis_server()
    redis = ThrowawayRedis()
    await redis.start()
    assert redis.proc is not None
    port = free_port()
    env = {
        "TELEHEALTH_VAR_DIR": str(tmp_path / "var"),
        "TELEHEALTH_REDIS_URL": redis.url,
        "TELEHEALTH_SHUTDOWN_TIMEOUT_SECONDS": str(SHUTDOWN_BUDGET),
        "TELEHEALTH_LOG_LEVEL": "WARNING",
    }
    assert await (await _run("db", "upgrade", env=env)).wait() == 0
    server = await _run("serve", "--port", str(port), env=env)
    base = f"http://127.0.0.1:{port}"
    frozen = False
    try:
        await _ready(base, server)
        async with aiohttp.ClientSession() as http:
            # Load: patients in their rooms (Redis subscriptions and presence), sockets waiting to
            # authenticate, and sign-ins running argon2.
            sockets = []
            for bearer in await _patients_in_rooms(tmp_path / "var", base, http, 12):
                async with http.get(f"{base}/api/patient/visit", headers={"Authorization": f"Bearer {bearer}"}) as r:
                    visit_id = (await r.json())["visit_id"]
                ws = await http.ws_connect(f"{base}/ws/visit/{visit_id}")
                await ws.send_json({"type": "auth", "v": 1, "id": "a1", "token": bearer})
                async with asyncio.timeout(10):
                    while (await ws.receive_json())["type"] != "waiting":
                        pass
                sockets.append(ws)
            sockets += [await http.ws_connect(f"{base}/ws/visit/v-{i}") for i in range(40)]
            body = {"username": "nobody", "password": "wrong password!"}
            logins = [asyncio.ensure_future(http.post(f"{base}/api/auth/login", json=body)) for _ in range(20)]
            await asyncio.sleep(0.3)
            os.kill(redis.proc.pid, signal.SIGSTOP)  # Redis stops answering, its connections stay open
            frozen = True
            started = time.monotonic()
            server.send_signal(signal.SIGTERM)
            async with asyncio.timeout(SHUTDOWN_BUDGET + 6):
                await server.wait()
            took = time.monotonic() - started
            await asyncio.gather(*logins, return_exceptions=True)
            for ws in sockets:
                await ws.close()
        assert took <= SHUTDOWN_BUDGET + 1.5, f"shutdown took {took:.1f} s"
    finally:
        if frozen:
            os.kill(redis.proc.pid, signal.SIGCONT)
        if server.returncode is None:
            server.kill()
            await server.wait()
        await redis.stop()


async def test_the_redis_pool_stays_bounded_under_a_burst() -> None:
    _need_redis_server()
    redis = ThrowawayRedis()
    await redis.start()
    broker = RedisBroker(redis.url, "pooltest", pool_size=4)
    observer = Redis.from_url(redis.url)
    try:
        await broker.start()
        await asyncio.gather(*(broker.presence([f"visit-{i}"]) for i in range(300)))
        clients = await observer.client_list()
        mine = [c for c in clients if c.get("name") == "telehealth-pooltest"]
        assert 1 <= len(mine) <= 4, len(mine)
    finally:
        await broker.close()
        await observer.aclose()
        await redis.stop()
