"""Backup, restore and integrity checks of a deployment: the database plus its content-addressed media.

A backup directory holds one shared `media/` tree (the store's own layout, so a second backup copies
only files it does not have yet) and one `snapshots/<time>/` per run with the database snapshot and a
manifest (the database file's SHA-256 and every media file the snapshot references, with its hash).
`LATEST` names the newest complete snapshot; the manifest is written last, after the data is synced.

The snapshot is consistent while the server runs: media files are written before their rows commit and
are never changed, so the files a database snapshot references already exist. SQLite is copied with
the online backup API; PostgreSQL with `pg_dump` inside an exported snapshot, in which the media list
is read too. All blocking work runs in threads or subprocesses, never on the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import URL, make_url

from telehealth.records.db import make_engine
from telehealth.records.mediastore import FileMediaStore

MANIFEST = "manifest.json"
LATEST = "LATEST"
FORMAT = 1
_CHUNK = 1024 * 1024
_MEDIA_QUERY = "SELECT DISTINCT storage_key, sha256 FROM media_files ORDER BY storage_key"


class BackupError(Exception):
    """A backup, restore or check could not be done (the message says why, without patient data)."""


@dataclass(frozen=True)
class MediaEntry:
    """One content-addressed file: its store key and the SHA-256 its rows record."""

    key: str
    sha256: str


@dataclass
class CopyReport:
    """What a media copy did."""

    copied: int = 0
    copied_bytes: int = 0
    present: int = 0
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class BackupResult:
    """One finished backup run."""

    snapshot: Path
    media_files: int
    copied: int
    copied_bytes: int
    problems: list[str]
    seconds: float


@dataclass(frozen=True)
class RestoreResult:
    """One finished restore."""

    snapshot: Path
    media_files: int
    seconds: float


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_path(url: str) -> Path:
    """The file of a SQLite database URL."""
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(database)


def _pg_command(url: str) -> tuple[list[str], dict[str, str], str | None]:
    """libpq arguments, environment (the password stays out of the process list) and the schema."""
    u: URL = make_url(url)
    args = ["--dbname", u.database or "postgres"]
    if u.host:
        args += ["--host", u.host]
    if u.port:
        args += ["--port", str(u.port)]
    if u.username:
        args += ["--username", u.username]
    env = dict(os.environ)
    if u.password:
        env["PGPASSWORD"] = str(u.password)
    schema = u.query.get("search_path")
    return args, env, schema if isinstance(schema, str) and schema else None


async def _run(program: str, *args: str, env: dict[str, str]) -> None:
    if shutil.which(program) is None:
        raise BackupError(f"{program} is not installed (PostgreSQL client tools are needed)")
    proc = await asyncio.create_subprocess_exec(
        program, *args, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, err = await proc.communicate()
    if proc.returncode != 0:
        raise BackupError(f"{program} failed: {err.decode(errors='replace').strip()[-500:]}")


def _sqlite_snapshot(source: Path, target: Path) -> list[MediaEntry]:
    """Copy a live SQLite database with the online backup API; list the media its copy references."""
    src = sqlite3.connect(source, timeout=30)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)  # one step: a consistent copy even while the server writes (WAL)
            rows = dst.execute(_MEDIA_QUERY).fetchall()
        finally:
            dst.close()
    finally:
        src.close()
    return [MediaEntry(key, sha) for key, sha in rows]


async def _pg_snapshot(url: str, target: Path) -> list[MediaEntry]:
    """pg_dump inside an exported snapshot, and the media list read in that same snapshot."""
    args, env, schema = _pg_command(url)
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="REPEATABLE READ")
            async with conn.begin():
                snapshot_id = (await conn.execute(text("SELECT pg_export_snapshot()"))).scalar_one()
                rows = (await conn.execute(text(_MEDIA_QUERY))).all()
                dump = ["--format=custom", "--no-owner", "--no-privileges", f"--snapshot={snapshot_id}"]
                if schema:
                    dump += ["--schema", schema]
                await _run("pg_dump", *dump, "--file", str(target), *args, env=env)
    finally:
        await engine.dispose()
    return [MediaEntry(key, sha) for key, sha in rows]


def _copy_one(src: Path, dst: Path, expected: str) -> int:
    """Copy through a temp file, hashing on the way; a source that no longer matches is refused."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=".tmp-")
    h = hashlib.sha256()
    size = 0
    try:
        with src.open("rb") as f, os.fdopen(fd, "wb") as out:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
                out.write(chunk)
                size += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        if h.hexdigest() != expected:
            raise BackupError(f"media {expected} does not match its hash (corrupted at the source)")
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return size


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def copy_media(source: Path, target: Path, entries: Iterable[MediaEntry], *, workers: int = 4) -> CopyReport:
    """Copy the files the target lacks (content-addressed: a present file of the same name is the same file).

    Each copy is fsynced before its rename and the directories after, so only our own data is flushed
    (a global sync would also wait for every other process's writes). A few threads overlap the fsyncs.
    """
    src_store, dst_store = FileMediaStore(source), FileMediaStore(target)
    report = CopyReport()
    todo: list[tuple[MediaEntry, Path]] = []
    for entry in entries:
        dst = dst_store.local_path(entry.key)
        if dst.exists():
            report.present += 1
        else:
            todo.append((entry, dst))

    def copy(item: tuple[MediaEntry, Path]) -> int | str:
        entry, dst = item
        try:
            return _copy_one(src_store.local_path(entry.key), dst, entry.sha256)
        except FileNotFoundError:
            return f"missing at the source: media {entry.key}"
        except BackupError as exc:
            return str(exc)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="backup-copy") as pool:
        for outcome in pool.map(copy, todo, chunksize=16):
            if isinstance(outcome, str):
                report.problems.append(outcome)
            else:
                report.copied += 1
                report.copied_bytes += outcome
        # The renames are durable once their directories are.
        list(pool.map(_fsync_dir, {dst.parent for _, dst in todo if dst.parent.exists()}))
    return report


def _fsync_file(path: Path) -> None:
    with path.open("rb") as f:
        os.fsync(f.fileno())


def _write_atomic(path: Path, data: str) -> None:
    tmp = path.with_name(f".tmp-{path.name}")
    tmp.write_text(data, encoding="utf-8")
    with tmp.open("rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _new_snapshot_dir(target: Path) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = target / "snapshots" / stamp
    path.mkdir(parents=True)  # creates target too
    return path


async def backup(database_url: str, media_dir: Path, target: Path) -> BackupResult:
    """Snapshot the database, copy new media into target/media, then write the manifest and LATEST."""
    started = time.perf_counter()
    snapshot = await asyncio.to_thread(_new_snapshot_dir, target)
    if _is_sqlite(database_url):
        db_file = snapshot / "database.sqlite3"
        entries = await asyncio.to_thread(_sqlite_snapshot, sqlite_path(database_url), db_file)
        kind, schema = "sqlite", None
    else:
        db_file = snapshot / "database.pgdump"
        entries = await _pg_snapshot(database_url, db_file)
        kind, schema = "postgresql", _pg_command(database_url)[2]
    report = await asyncio.to_thread(copy_media, media_dir, target / "media", entries)
    db_hash = await asyncio.to_thread(sha256_file, db_file)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "created_at": datetime.now(UTC).isoformat(),
        "database": {"kind": kind, "file": db_file.name, "sha256": db_hash, "schema": schema},
        "media": [[e.key, e.sha256] for e in entries],
        "problems": report.problems,
    }
    # Media files were fsynced as they were copied; the snapshot must be durable before its manifest.
    await asyncio.to_thread(_fsync_file, db_file)
    await asyncio.to_thread(_write_atomic, snapshot / MANIFEST, json.dumps(manifest, indent=1))
    if not report.problems:
        await asyncio.to_thread(_write_atomic, target / LATEST, snapshot.name + "\n")
    return BackupResult(
        snapshot, len(entries), report.copied, report.copied_bytes, report.problems, time.perf_counter() - started
    )


def read_manifest(source: Path, snapshot: str | None = None) -> tuple[Path, dict[str, Any]]:
    """The snapshot directory and its manifest (the newest complete one unless named)."""
    if snapshot is None:
        latest = source / LATEST
        if not latest.is_file():
            raise BackupError(f"{source} holds no complete backup ({LATEST} is missing)")
        snapshot = latest.read_text(encoding="utf-8").strip()
    path = source / "snapshots" / snapshot
    try:
        manifest: dict[str, Any] = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise BackupError(f"snapshot {snapshot} has no manifest (incomplete backup)") from exc
    if manifest.get("format") != FORMAT:
        raise BackupError(f"snapshot {snapshot} has an unknown format")
    return path, manifest


def _media_dir_empty(media_dir: Path) -> bool:
    return not media_dir.exists() or not any(p.is_file() for p in media_dir.rglob("*"))


async def _database_empty(url: str) -> bool:
    if _is_sqlite(url):
        path = sqlite_path(url)
        if not path.exists():
            return True

        def tables() -> int:
            conn = sqlite3.connect(path)
            try:
                return int(conn.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()[0])
            finally:
                conn.close()

        return await asyncio.to_thread(tables) == 0
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            count = await conn.scalar(
                text("SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()")
            )
            return not count
    finally:
        await engine.dispose()


async def restore(database_url: str, media_dir: Path, source: Path, snapshot: str | None = None) -> RestoreResult:
    """Restore a snapshot into an empty deployment; refuse one that holds any table or media file."""
    started = time.perf_counter()
    path, manifest = await asyncio.to_thread(read_manifest, source, snapshot)
    db = manifest["database"]
    db_file = path / db["file"]
    if await asyncio.to_thread(sha256_file, db_file) != db["sha256"]:
        raise BackupError(f"the database file of snapshot {path.name} does not match its manifest")
    wants_sqlite = _is_sqlite(database_url)
    if wants_sqlite != (db["kind"] == "sqlite"):
        raise BackupError(f"snapshot {path.name} is a {db['kind']} backup; the target database is not")
    if not await asyncio.to_thread(_media_dir_empty, media_dir) or not await _database_empty(database_url):
        raise BackupError("the target deployment is not empty: restore only into a new database and media directory")
    if wants_sqlite:
        target = sqlite_path(database_url)
        target.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(_copy_one, db_file, target, db["sha256"])
    else:
        args, env, schema = _pg_command(database_url)
        if schema != db["schema"]:
            raise BackupError(f"the backup holds schema {db['schema']!r}; the target URL selects {schema!r}")
        await _run("pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", *args, str(db_file), env=env)
    entries = [MediaEntry(key, sha) for key, sha in manifest["media"]]
    report = await asyncio.to_thread(copy_media, source / "media", media_dir, entries)
    if report.problems:
        raise BackupError("; ".join(report.problems[:20]))
    return RestoreResult(path, len(entries), time.perf_counter() - started)


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of re-hashing every media file against its rows."""

    checked: int
    missing: list[str]
    mismatched: list[str]
    orphans: list[str]
    seconds: float

    @property
    def ok(self) -> bool:
        """No missing, mismatched or orphaned file."""
        return not (self.missing or self.mismatched or self.orphans)

    @property
    def files_per_second(self) -> float:
        """Throughput of the check."""
        return self.checked / self.seconds if self.seconds > 0 else float("inf")


def _hash_or_none(path: Path) -> str | None:
    try:
        return sha256_file(path)
    except FileNotFoundError:
        return None


def _check_files(media_dir: Path, entries: Sequence[MediaEntry], workers: int) -> tuple[list[str], list[str]]:
    store = FileMediaStore(media_dir)
    missing: list[str] = []
    mismatched: list[str] = []
    # hashlib releases the GIL on large buffers, so a few threads overlap reading and hashing.
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="verify") as pool:
        paths = [store.local_path(e.key) for e in entries]
        for entry, digest in zip(entries, pool.map(_hash_or_none, paths, chunksize=64), strict=True):
            if digest is None:
                missing.append(entry.key)
            elif digest != entry.sha256 or digest != entry.key:
                mismatched.append(entry.key)
    return missing, mismatched


def _orphans(media_dir: Path, known: set[str]) -> list[str]:
    if not media_dir.exists():
        return []
    found = []
    for path in media_dir.rglob("*"):
        # .tmp- files are writes in progress (or interrupted ones), not stored media.
        if path.is_file() and not path.name.startswith(".tmp-") and path.name not in known:
            found.append(str(path.relative_to(media_dir)))
    return sorted(found)


async def verify(database_url: str, media_dir: Path, *, workers: int = 2) -> VerifyReport:
    """Re-hash every media file against its rows; list missing files, mismatches and orphans."""
    started = time.perf_counter()
    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(text(_MEDIA_QUERY))).all()
    finally:
        await engine.dispose()
    entries = [MediaEntry(key, sha) for key, sha in rows]
    missing, mismatched = await asyncio.to_thread(_check_files, media_dir, entries, workers)
    orphans = await asyncio.to_thread(_orphans, media_dir, {e.key for e in entries})
    return VerifyReport(len(entries), missing, mismatched, orphans, time.perf_counter() - started)
