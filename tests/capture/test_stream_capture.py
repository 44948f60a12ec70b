"""End to end: an aiortc sender -> ServerCapturePeer -> still + clip, over real WebRTC."""

from __future__ import annotations

import asyncio
import io
import itertools
import threading
import time

import av
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from PIL import Image, ImageStat

from telehealth.capture.serverpeer import (
    CaptureUnavailable,
    PeerSettings,
    PeerState,
    ServerCapturePeer,
)

from .conftest import Call
from .sender import ExpressiveTrack, connect

WINDOW = 3.0


def _band_means(image: Image.Image) -> tuple[float, float]:
    """Mean luma of the left and right edge strips at the marker's height."""
    gray = image.convert("L")
    w, h = gray.size
    left = gray.crop((0, h // 3 + 4, w // 10, 2 * h // 3 - 4))
    right = gray.crop((w - w // 10, h // 3 + 4, w, 2 * h // 3 - 4))
    return ImageStat.Stat(left).mean[0], ImageStat.Stat(right).mean[0]


async def _one_step(call: Call) -> tuple[float, object]:
    await asyncio.sleep(2.0)  # past the stream's quality ramp
    start = call.peer.mark_step_start()
    call.track.expression_start = start
    await asyncio.sleep(WINDOW)
    return start, await call.peer.capture("smile_open", start, start + WINDOW)


async def test_still_is_full_size_unmirrored_and_at_peak(call: Call) -> None:
    start, result = await _one_step(call)
    still = result.still  # type: ignore[attr-defined]
    assert (still.width, still.height) == (640, 480)
    image = Image.open(io.BytesIO(still.data))
    assert image.format == "PNG" and image.size == (640, 480)
    left, right = _band_means(image)
    assert left > 200 and right < 160, "marker must stay on the left: never mirror"
    # The synthetic face peaks between 1.5 and 1.8 s after the step start.
    assert 1.3 <= still.timestamp - start <= 2.0
    thumb = Image.open(io.BytesIO(still.thumbnail))
    assert thumb.format == "JPEG" and thumb.size == (320, 240)
    assert _band_means(thumb)[0] > _band_means(thumb)[1] + 40


async def test_clip_is_valid_webm_with_preroll(call: Call) -> None:
    start, result = await _one_step(call)
    clip = result.clip  # type: ignore[attr-defined]
    assert clip.content_type == "video/webm" and (clip.width, clip.height) == (640, 480)
    assert clip.preroll >= 1.5 - 0.05  # starts at a keyframe at or before start - 1.5 s
    expected = (start + WINDOW) - clip.start_timestamp
    assert abs(clip.duration - expected) <= 0.5
    with av.open(io.BytesIO(clip.data)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "vp8"
        packets = [p for p in container.demux(stream) if p.size]
        assert packets[0].is_keyframe and packets[0].pts == 0
        assert abs(float(container.duration / av.time_base) - clip.duration) <= 0.1
    with av.open(io.BytesIO(clip.data)) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == clip.frame_count == len(packets)
    assert (frames[0].width, frames[0].height) == (640, 480)


async def test_capture_without_step_mark_decodes_the_window(call: Call) -> None:
    await asyncio.sleep(2.0)
    start = time.monotonic()
    call.track.expression_start = start
    await asyncio.sleep(WINDOW)
    result = await call.peer.capture("pucker", start, start + WINDOW, clip=False)
    assert result.clip is None and result.still is not None
    assert 1.3 <= result.still.timestamp - start <= 2.0


async def test_resolution_drop_mid_step_keeps_the_peak(call: Call) -> None:
    """Bandwidth adaptation can halve the resolution mid-call (capture-protocol.md)."""
    await asyncio.sleep(2.0)
    start = call.peer.mark_step_start()
    call.track.expression_start = start
    call.track.half_size_after = start + 1.0  # before the peak at 1.5-1.8 s
    await asyncio.sleep(WINDOW)
    result = await call.peer.capture("smile_open", start, start + WINDOW)
    assert result.still is not None and result.clip is not None
    assert (result.still.width, result.still.height) == (320, 240)
    assert 1.3 <= result.still.timestamp - start <= 2.0
    assert result.clip.resolution_changed and (result.clip.width, result.clip.height) == (640, 480)
    with av.open(io.BytesIO(result.clip.data)) as container:
        sizes = {(f.width, f.height) for f in container.decode(video=0)}
    assert sizes == {(640, 480), (320, 240)}
    left, right = _band_means(Image.open(io.BytesIO(result.still.data)))
    assert left > 200 and right < 160


async def test_receiver_never_decodes(call: Call) -> None:
    await asyncio.sleep(1.0)
    receiver = call.peer._receiver
    assert call.peer.stats.frames >= 20 and call.peer.stats.dropped == 0
    assert receiver.track._queue.qsize() == 0  # aiortc's decoder produced nothing
    assert len(call.peer.ring) == call.peer.stats.frames


async def test_answer_is_recvonly_vp8_with_bitrate_hint(call: Call) -> None:
    answer = call.sender.remoteDescription.sdp
    video = answer[answer.index("m=video") :]
    assert "a=recvonly" in video
    assert "H264" not in video and "VP8/90000" in video
    hint = "x-google-start-bitrate=2500;x-google-min-bitrate=1500;x-google-max-bitrate=4000"
    assert hint in video
    assert "typ srflx" not in answer  # no STUN server was consulted
    assert call.peer._pc._RTCPeerConnection__configuration.iceServers == []


async def test_keyframes_keep_coming_for_preroll(call: Call) -> None:
    await asyncio.sleep(5.0)
    keyframes = [f.arrival for f in call.peer.ring if f.keyframe]
    gaps = [b - a for a, b in itertools.pairwise(keyframes)]
    assert len(keyframes) >= 3 and max(gaps) < 3.0


async def test_close_leaves_no_tasks_or_threads() -> None:
    peer = ServerCapturePeer([])
    sender = await connect(peer, ExpressiveTrack(320, 240))
    async with asyncio.timeout(10):
        await peer.wait_receiving()
    peer.mark_step_start()
    await asyncio.sleep(0.5)
    await peer.close()
    await sender.close()
    await asyncio.sleep(0.1)
    assert peer.state is PeerState.CLOSED
    assert not peer._tasks
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert others == []
    assert not [t for t in threading.enumerate() if t.name.endswith("-decoder")]
    with pytest.raises(CaptureUnavailable):
        await peer.capture("rest", 0.0, 1.0)
    await peer.close()  # idempotent


async def test_peer_closes_itself_when_the_client_vanishes() -> None:
    peer = ServerCapturePeer([])
    sender = await connect(peer, ExpressiveTrack(320, 240))
    async with asyncio.timeout(10):
        await peer.wait_receiving()
    await sender.close()  # the browser tab is gone
    async with asyncio.timeout(5):
        await peer.wait_closed()
    assert peer.state is PeerState.CLOSED and not peer._tasks


async def test_peer_closes_itself_when_media_stops_flowing() -> None:
    """A frozen or silently gone client: the connection lingers but no frame arrives."""
    peer = ServerCapturePeer([], settings=PeerSettings(media_timeout=1.0))
    sender = await connect(peer, ExpressiveTrack(320, 240))
    try:
        async with asyncio.timeout(10):
            await peer.wait_receiving()
        sender.getSenders()[0].replaceTrack(None)
        async with asyncio.timeout(5):
            await peer.wait_closed()
        assert peer.state is PeerState.CLOSED and not peer._tasks
    finally:
        await sender.close()
        await peer.close()


async def test_peer_gives_up_when_the_client_never_connects() -> None:
    peer = ServerCapturePeer([], settings=PeerSettings(connect_timeout=1.0))
    sender = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    sender.addTransceiver(ExpressiveTrack(320, 240), direction="sendonly")
    try:
        await sender.setLocalDescription(await sender.createOffer())
        await peer.answer(sender.localDescription.sdp)  # the answer never reaches the client
        async with asyncio.timeout(5):
            await peer.wait_closed()
        assert peer.state is PeerState.CLOSED and not peer._tasks
    finally:
        await sender.close()
        await peer.close()
