import hashlib
from pathlib import Path

import pytest

from telehealth.records.errors import InvalidInput
from telehealth.records.mediastore import FileMediaStore


async def test_put_read_verify(tmp_path: Path) -> None:
    store = FileMediaStore(tmp_path)
    data = b"\x89PNG fake still" * 1000
    obj = await store.put_bytes(data)
    assert obj.sha256 == hashlib.sha256(data).hexdigest() == obj.key
    assert obj.size == len(data)
    assert await store.read(obj.key) == data
    assert await store.verify(obj.key)
    assert store.local_path(obj.key) == tmp_path / obj.key[:2] / obj.key[2:4] / obj.key
    assert not list(tmp_path.rglob(".tmp-*")), "temporary files must not remain"


async def test_verify_detects_tampering_and_missing_files(tmp_path: Path) -> None:
    store = FileMediaStore(tmp_path)
    obj = await store.put_bytes(b"original")
    store.local_path(obj.key).write_bytes(b"tampered")
    assert not await store.verify(obj.key)
    store.local_path(obj.key).unlink()
    assert not await store.verify(obj.key)


async def test_put_file_streams_and_same_content_is_stored_once(tmp_path: Path) -> None:
    store = FileMediaStore(tmp_path / "media")
    src = tmp_path / "clip.webm"
    src.write_bytes(b"x" * (3 * 1024 * 1024 + 7))
    a = await store.put_file(src)
    b = await store.put_bytes(src.read_bytes())
    assert a == b
    assert src.exists(), "the source file is left in place"
    chunks = [c async for c in store.iter_chunks(a.key)]
    assert b"".join(chunks) == src.read_bytes()


@pytest.mark.parametrize(
    "key",
    ["../../etc/passwd", "/etc/passwd", "ab/../cd", "A" * 64, "0" * 63, "0" * 64 + "/", "..", ""],
)
async def test_path_like_keys_are_rejected(tmp_path: Path, key: str) -> None:
    store = FileMediaStore(tmp_path)
    with pytest.raises(InvalidInput):
        store.local_path(key)
    with pytest.raises(InvalidInput):
        await store.read(key)
