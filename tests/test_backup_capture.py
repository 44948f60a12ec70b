"""A backup taken while a visit's device copies arrive restores and verifies; metrics follow the uploads."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from telehealth.records.backup import backup, restore, verify
from telehealth.settings import Settings
from tests.test_backup import count_media, fresh_database  # noqa: F401  (fixture)
from tests.test_uploads import camera_jpeg, pending_takes, upload, webm_clip


async def _uploads_ok(client: TestClient[Any, Any], kind: str) -> float:
    text = await (await client.get("/metrics")).text()
    found = re.search(rf'^telehealth_uploads_total\{{kind="{kind}",outcome="ok"\}} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


async def test_a_backup_during_a_visits_uploads_restores_and_verifies_and_metrics_count_them(
    client: TestClient[Any, Any],
    settings: Settings,
    fresh_database: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    stills_before, clips_before = await _uploads_ok(client, "still"), await _uploads_ok(client, "clip")
    ctx, still_id, clip_id = await pending_takes(client, "BKCAP")
    clip = webm_clip(seconds=1.0)

    async def device_copies() -> None:
        for i in range(4):
            r = await upload(client, ctx, still_id, camera_jpeg(640 + i * 16, 480), "image/jpeg", key=f"s{i}")
            assert r.status in (200, 201), await r.text()
        r = await upload(client, ctx, clip_id, clip, "video/webm", key="c0")
        assert r.status in (200, 201), await r.text()

    uploading = asyncio.create_task(device_copies())
    await asyncio.sleep(0.05)
    result = await backup(settings.database_url, settings.media_dir, tmp_path / "backup")
    await uploading
    assert result.problems == []

    restored_media = tmp_path / "restored" / "media"
    await restore(fresh_database, restored_media, tmp_path / "backup")
    report = await verify(fresh_database, restored_media)
    assert report.ok, report
    assert report.checked == result.media_files == await count_media(fresh_database)

    # A second backup after the visit holds every file; it too restores in full elsewhere.
    second = await backup(settings.database_url, settings.media_dir, tmp_path / "backup")
    assert second.media_files >= result.media_files and second.problems == []
    assert await _uploads_ok(client, "still") - stills_before == 4
    assert await _uploads_ok(client, "clip") - clips_before == 1
