"""Content-addressed media store: files named by their SHA-256, written atomically."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from telehealth.records.errors import InvalidInput, RecordNotFound

_KEY = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class StoredObject:
    """What the store knows about a file it holds."""

    key: str
    sha256: str
    size: int


def validate_key(key: str) -> str:
    """Accept only a lowercase hex SHA-256: nothing path-like ever reaches the filesystem."""
    if not _KEY.fullmatch(key):
        raise InvalidInput("invalid media key")
    return key


class MediaStore(Protocol):
    """The seam for an object store later; callers see only keys."""

    async def put_bytes(self, data: bytes) -> StoredObject:
        """Store bytes durably and return their key."""
        ...

    async def put_file(self, path: Path) -> StoredObject:
        """Store a file's content durably (the source is left in place)."""
        ...

    async def read(self, key: str) -> bytes:
        """Return a stored object's bytes."""
        ...

    def local_path(self, key: str) -> Path:
        """A filesystem path for streaming the object (file store only)."""
        ...

    async def verify(self, key: str) -> bool:
        """Re-hash the object and report whether it still matches its key."""
        ...

    def iter_chunks(self, key: str) -> AsyncIterator[bytes]:
        """Stream the object in chunks."""
        ...


class FileMediaStore:
    """Files under base/ab/cd/<sha256>; temp file, fsync, rename, fsync dir."""

    def __init__(self, base: Path) -> None:
        self.base = base.resolve()

    def local_path(self, key: str) -> Path:
        """Path derived only from the validated hash, jailed under the base directory."""
        validate_key(key)
        path = (self.base / key[:2] / key[2:4] / key).resolve()
        if not path.is_relative_to(self.base):
            raise InvalidInput("invalid media key")
        return path

    async def put_bytes(self, data: bytes) -> StoredObject:
        """Store bytes; returns once the file is durable."""
        return await asyncio.to_thread(self._put_bytes_sync, data)

    async def put_file(self, path: Path) -> StoredObject:
        """Store a file's content; returns once the copy is durable."""
        return await asyncio.to_thread(self._put_file_sync, path)

    async def read(self, key: str) -> bytes:
        """Return a stored object's bytes."""
        path = self.local_path(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError as exc:
            raise RecordNotFound("media file missing") from exc

    async def verify(self, key: str) -> bool:
        """True when the file exists and its SHA-256 equals its key."""
        path = self.local_path(key)
        return await asyncio.to_thread(_hash_file_or_none, path) == key

    async def iter_chunks(self, key: str) -> AsyncIterator[bytes]:
        """Stream the object without loading it whole."""
        path = self.local_path(key)
        f = await asyncio.to_thread(path.open, "rb")
        try:
            while chunk := await asyncio.to_thread(f.read, _CHUNK):
                yield chunk
        finally:
            await asyncio.to_thread(f.close)

    def _put_bytes_sync(self, data: bytes) -> StoredObject:
        digest = hashlib.sha256(data).hexdigest()
        return self._commit(digest, len(data), lambda f: f.write(data))

    def _put_file_sync(self, src: Path) -> StoredObject:
        h = hashlib.sha256()
        size = 0
        with src.open("rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
                size += len(chunk)

        def copy(dst: _Writable) -> None:
            with src.open("rb") as f:
                while chunk := f.read(_CHUNK):
                    dst.write(chunk)

        return self._commit(h.hexdigest(), size, copy)

    def _commit(self, digest: str, size: int, write: _Writer) -> StoredObject:
        final = self.local_path(digest)
        if final.exists() and final.stat().st_size == size:
            return StoredObject(key=digest, sha256=digest, size=size)
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(final.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return StoredObject(key=digest, sha256=digest, size=size)


class _Writable(Protocol):
    def write(self, data: bytes, /) -> int: ...


class _Writer(Protocol):
    def __call__(self, f: _Writable, /) -> object: ...


def _hash_file_or_none(path: Path) -> str | None:
    try:
        h = hashlib.sha256()
        with path.open("rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
        return h.hexdigest()
    except FileNotFoundError:
        return None
