"""The optional continuous session recording: a stream-copied WebM of the whole call."""

from __future__ import annotations

import asyncio
from pathlib import Path

import av

from telehealth.capture.serverpeer import ServerCapturePeer

from .sender import ExpressiveTrack, connect


async def test_session_recording_is_a_playable_webm(tmp_path: Path) -> None:
    path = tmp_path / "session.webm"
    peer = ServerCapturePeer([], recording_path=path)
    sender = await connect(peer, ExpressiveTrack(320, 240))
    try:
        async with asyncio.timeout(10):
            await peer.wait_receiving()
        await asyncio.sleep(2.0)
    finally:
        await sender.close()
        await peer.close()
    received = peer.stats.frames
    with av.open(str(path)) as container:
        packets = [p for p in container.demux(video=0) if p.size]
        duration = container.duration / av.time_base
    assert packets[0].is_keyframe and packets[0].pts == 0
    assert len(packets) == received >= 50
    assert abs(duration - received / 30) < 0.3
    with av.open(str(path)) as container:
        decoded = sum(1 for _ in container.decode(video=0))
    assert decoded == received
