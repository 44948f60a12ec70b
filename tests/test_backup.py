"""Backup, restore and verify on SQLite and PostgreSQL, while the server keeps writing."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from telehealth.records import visits
from telehealth.records.backup import BackupError, backup, restore, verify
from telehealth.records.db import make_engine, make_sessionmaker
from telehealth.records.mediastore import FileMediaStore
from telehealth.records.models import AffectedSide, MediaFile, Provenance
from telehealth.records.patients import create_patient
from telehealth.settings import Settings
from tests.conftest import Staff

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Clinic:
    """A deployment with one visit to attach media to."""

    settings: Settings
    db: async_sessionmaker[AsyncSession]
    store: FileMediaStore
    visit_id: uuid.UUID


@pytest.fixture
async def clinic(settings: Settings, db: async_sessionmaker[AsyncSession], staff: Staff) -> Clinic:
    async with db() as s, s.begin():
        p = await create_patient(
            s,
            mrn="BK-1",
            given_name="Bea",
            family_name="Backup",
            birth_date=date(1970, 1, 2),
            affected_side=AffectedSide.LEFT,
            created_by=staff.clinician,
        )
        v = await visits.schedule_visit(
            s, patient_id=p.id, clinician_id=staff.clinician, scheduled_at=datetime.now(UTC)
        )
    return Clinic(settings, db, FileMediaStore(settings.media_dir), v.id)


async def add_media(clinic: Clinic, n: int, tag: str) -> list[str]:
    """Store n files the way captures do (file first, then its row) and return their keys."""
    keys = []
    for i in range(n):
        stored = await clinic.store.put_bytes(f"{tag}-{i}-{uuid.uuid4()}".encode() * 50)
        async with clinic.db() as s, s.begin():
            s.add(
                MediaFile(
                    visit_id=clinic.visit_id,
                    sha256=stored.sha256,
                    size=stored.size,
                    content_type="image/png",
                    storage_key=stored.key,
                    provenance=Provenance.STREAM,
                )
            )
        keys.append(stored.key)
    return keys


@pytest.fixture
async def fresh_database(settings: Settings, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database of the same kind: a new SQLite file, or a new PostgreSQL database."""
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'restored' / 'db.sqlite3'}"
        return
    name = f"restore_{uuid.uuid4().hex[:10]}"
    raw = url.set(drivername="postgresql", query={}).render_as_string(hide_password=False)
    conn = await asyncpg.connect(raw)
    await conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        await conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await conn.close()


async def count_media(database_url: str) -> int:
    engine = make_engine(database_url)
    try:
        async with make_sessionmaker(engine)() as s:
            return int(await s.scalar(select(func.count()).select_from(MediaFile)) or 0)
    finally:
        await engine.dispose()


async def test_a_backup_taken_during_writes_restores_into_a_fresh_deployment_that_verifies(
    clinic: Clinic, fresh_database: str, tmp_path: Path
) -> None:
    await add_media(clinic, 20, "before")
    stop = asyncio.Event()
    written = 0

    async def keep_writing() -> None:
        nonlocal written
        while not stop.is_set():
            written += len(await add_media(clinic, 1, "during"))

    writer = asyncio.create_task(keep_writing())
    await asyncio.sleep(0.05)
    result = await backup(clinic.settings.database_url, clinic.settings.media_dir, tmp_path / "backup")
    await asyncio.sleep(0.05)
    stop.set()
    await writer
    assert written > 0 and result.problems == []
    assert 20 <= result.media_files <= 20 + written

    restored_media = tmp_path / "restored" / "media"
    restored = await restore(fresh_database, restored_media, tmp_path / "backup")
    assert restored.media_files == result.media_files
    report = await verify(fresh_database, restored_media)
    assert report.ok, report
    assert report.checked == result.media_files == await count_media(fresh_database)

    # The second backup into the same directory copies only what is new since the first.
    await add_media(clinic, 3, "after")
    second = await backup(clinic.settings.database_url, clinic.settings.media_dir, tmp_path / "backup")
    assert second.media_files == 20 + written + 3
    assert second.copied == second.media_files - result.media_files


async def test_restore_refuses_a_deployment_that_already_holds_records(clinic: Clinic, tmp_path: Path) -> None:
    await add_media(clinic, 2, "x")
    await backup(clinic.settings.database_url, clinic.settings.media_dir, tmp_path / "backup")
    with pytest.raises(BackupError, match="not empty"):
        await restore(clinic.settings.database_url, clinic.settings.media_dir, tmp_path / "backup")
    assert (await verify(clinic.settings.database_url, clinic.settings.media_dir)).ok


async def test_verify_names_a_corrupted_a_deleted_and_an_orphaned_file_and_exits_non_zero(
    clinic: Clinic, tmp_path: Path
) -> None:
    keys = await add_media(clinic, 5, "v")
    corrupted, deleted = keys[1], keys[3]
    with clinic.store.local_path(corrupted).open("r+b") as f:
        f.write(b"X")
    clinic.store.local_path(deleted).unlink()
    orphan = clinic.store.local_path("ab" * 32)
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"no row")

    report = await verify(clinic.settings.database_url, clinic.settings.media_dir)
    assert (report.mismatched, report.missing, report.orphans) == ([corrupted], [deleted], ["ab/ab/" + "ab" * 32])
    assert report.checked == 5

    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TELEHEALTH_")},
        "TELEHEALTH_VAR_DIR": str(clinic.settings.var_dir),
        "TELEHEALTH_DATABASE_URL": clinic.settings.database_url,
        "TELEHEALTH_MEDIA_DIR": str(clinic.settings.media_dir),
    }
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "telehealth", "verify"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert f"mismatch: {corrupted}" in proc.stdout and f"missing: {deleted}" in proc.stdout
    assert "files/s" in proc.stdout
