"""Shared fixtures: every database test runs on SQLite and on the real PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from telehealth.app import create_app
from telehealth.records.accounts import create_user
from telehealth.records.db import make_engine, make_sessionmaker
from telehealth.records.migrate import upgrade_sync
from telehealth.records.models import Base, Role
from telehealth.settings import Settings

PG_URL = os.environ.get("TELEHEALTH_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
T = TypeVar("T")
IN_CI = bool(os.environ.get("CI"))
PASSWORD = "correct horse battery"


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion in a private thread (never disturbs the test's own loop)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _pg_reachable() -> str | None:
    import asyncpg  # type: ignore[import-untyped]

    async def probe() -> None:
        conn = await asyncpg.connect(PG_URL.replace("postgresql+asyncpg", "postgresql"), timeout=3)
        await conn.close()

    try:
        run_async(probe())
    except Exception as exc:
        return str(exc)
    return None


@pytest.fixture(scope="session")
def pg_schema_url() -> Iterator[str]:
    """A fresh schema in the shared `test` database, migrated once for the session."""
    problem = _pg_reachable()
    if problem:
        if IN_CI:
            pytest.fail(f"PostgreSQL at {PG_URL} is not reachable in CI: {problem}")
        pytest.skip(f"!!! PostgreSQL NOT REACHABLE ({problem}); PostgreSQL tests SKIPPED !!!")
    schema = f"t_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    import asyncpg

    raw = PG_URL.replace("postgresql+asyncpg", "postgresql")

    async def ddl(sql: str) -> None:
        conn = await asyncpg.connect(raw)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    run_async(ddl(f'CREATE SCHEMA "{schema}"'))
    url = f"{PG_URL}?search_path={schema}"
    upgrade_sync(url)
    yield url
    run_async(ddl(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file copied for each test (migrating once keeps tests fast)."""
    path = tmp_path_factory.mktemp("sqlite") / "template.sqlite3"
    upgrade_sync(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The database of one test, empty and at the latest schema."""
    if request.param == "sqlite":
        target = tmp_path / "db.sqlite3"
        shutil.copy(request.getfixturevalue("sqlite_template"), target)
        return f"sqlite+aiosqlite:///{target}"
    url: str = request.getfixturevalue("pg_schema_url")
    tables = ", ".join(f'"{t.name}"' for t in reversed(Base.metadata.sorted_tables))

    async def truncate() -> None:
        engine = make_engine(url)
        async with engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        await engine.dispose()

    run_async(truncate())
    return url


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """Settings for one test: its own database, media and var directories."""
    var = tmp_path / "var"
    var.mkdir()
    return Settings(
        var_dir=var,
        database_url=database_url,
        media_dir=var / "media",
        secret_key="test-secret-key",
        # No landmark worker unless a test measures: each loads the model for seconds (tests/analysis enable it).
        analysis_warm=False,
        measure_on_capture=False,
    )


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A sessionmaker on the test database, for arranging and checking records directly."""
    engine = make_engine(settings.database_url)
    yield make_sessionmaker(engine)
    await engine.dispose()


@dataclass
class Staff:
    """Ids of the seeded staff accounts."""

    admin: uuid.UUID
    clinician: uuid.UUID
    reviewer: uuid.UUID
    clinician2: uuid.UUID


@pytest.fixture
async def staff(db: async_sessionmaker[AsyncSession]) -> Staff:
    """One user per role (all with PASSWORD)."""
    async with db() as s, s.begin():
        a = await create_user(s, "admin", "Admin", Role.ADMIN, PASSWORD)
        c = await create_user(s, "clinician", "Dr. Clin", Role.CLINICIAN, PASSWORD)
        r = await create_user(s, "reviewer", "Dr. Rev", Role.REVIEWER, PASSWORD)
        c2 = await create_user(s, "clinician2", "Dr. Two", Role.CLINICIAN, PASSWORD)
    return Staff(a.id, c.id, r.id, c2.id)


@pytest.fixture
async def client(aiohttp_client: Any, settings: Settings, staff: Staff) -> TestClient[Any, Any]:
    """A test client on the real app factory (staff seeded)."""
    return await aiohttp_client(create_app(settings))


async def login(client: TestClient[Any, Any], username: str, password: str = PASSWORD) -> dict[str, Any]:
    """Sign in; afterwards the client sends the CSRF header on every request."""
    resp = await client.post("/api/auth/login", json={"username": username, "password": password})
    assert resp.status == 200, await resp.text()
    me: dict[str, Any] = await resp.json()
    client.session.headers["X-CSRF-Token"] = me["csrf_token"]
    return me


def with_settings(settings: Settings, **changes: Any) -> Settings:
    """A copy of settings with some fields changed."""
    return replace(settings, **changes)
