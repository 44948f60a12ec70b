"""The server's receive-only peer: stores the patient's encoded camera stream and captures
stills and clips from it without ever decoding the whole stream."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpReceiver, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from .clip import remux_webm
from .frames import EncodedFrame, parse_vp8_header
from .passthrough import install_passthrough
from .protocol import MAX_CLIP_SECONDS, StillRule
from .recorder import SessionRecorder
from .result import CaptureUnavailable, StreamCaptureResult
from .ring import FrameRing
from .sdp import BitrateHint, add_bitrate_hint
from .still import QUALITY_RAMP_SECONDS, StillJob, finish_still

__all__ = [
    "CaptureUnavailable",
    "PeerSettings",
    "PeerState",
    "PeerStateError",
    "PeerStats",
    "ServerCapturePeer",
]

logger = logging.getLogger(__name__)

_FEED_BATCH = 30  # frames per executor call: keeps a capture's wait for the tracker short
_CADENCE_TICK = 0.1


class PeerStateError(RuntimeError):
    """The peer cannot do this in its current state."""


class PeerState(Enum):
    """Lifecycle of a server capture peer."""

    NEW = "new"
    CONNECTING = "connecting"  # answered; waiting for the first keyframe
    RECEIVING = "receiving"
    CLOSED = "closed"


_MOVES = {
    PeerState.NEW: {PeerState.CONNECTING, PeerState.CLOSED},
    PeerState.CONNECTING: {PeerState.RECEIVING, PeerState.CLOSED},
    PeerState.RECEIVING: {PeerState.CLOSED},
    PeerState.CLOSED: set(),
}


@dataclass(frozen=True, slots=True)
class PeerSettings:
    """Tunables of a capture peer; the defaults follow capture-protocol.md and webrtc-notes.md."""

    ring_seconds: float = 12.0
    ring_max_bytes: int = 48 * 1024 * 1024  # ~90 s at 4 Mbit/s: the spontaneous step fits
    preroll_seconds: float = 1.5
    # Chromium and aiortc send a keyframe only every ~100 s unless asked: without a steady
    # supply, no clip could start before the click.
    keyframe_interval: float = 2.0
    min_pli_interval: float = 0.5
    end_wait_seconds: float = 1.0  # how long capture() waits for frames up to window end
    media_timeout: float = 20.0  # no frame for this long while receiving: the client is gone
    connect_timeout: float = 30.0  # answered but no keyframe yet after this long: give up
    still_png: bool = True  # False: JPEG quality 95
    bitrate: BitrateHint = field(default_factory=BitrateHint)

    def __post_init__(self) -> None:
        for name in (
            "ring_seconds",
            "keyframe_interval",
            "min_pli_interval",
            "end_wait_seconds",
            "media_timeout",
            "connect_timeout",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.preroll_seconds < 0 or self.ring_max_bytes <= 0:
            raise ValueError("preroll_seconds must be >= 0 and ring_max_bytes > 0")
        if self.preroll_seconds + self.keyframe_interval >= self.ring_seconds:
            raise ValueError("the ring must span pre-roll plus a keyframe interval")


@dataclass(slots=True)
class PeerStats:
    """Counters for monitoring."""

    frames: int = 0
    keyframes: int = 0
    bytes: int = 0
    dropped: int = 0  # malformed, not VP8, or undecodable until the next keyframe
    plis: int = 0


@dataclass(slots=True)
class _Tracking:
    start: float
    rule: StillRule
    start_index: int | None
    job: StillJob | None = None
    stopped: bool = False
    task: asyncio.Task[None] | None = None


class ServerCapturePeer:
    """A receive-only RTCPeerConnection that keeps the encoded video and captures from it.

    Timebase: ``clock`` (default ``time.monotonic``), seconds, server side. The executor
    runs all decoding, remuxing and image encoding; pass the app's shared one, or the peer
    makes and shuts down its own. With ``recording_path``, the whole session is also written
    (stream copy) to that WebM file, finished when the peer closes. ``on_state`` is called
    (synchronously, on the event loop) after every state move.
    """

    def __init__(
        self,
        ice_servers: Sequence[Any],
        *,
        settings: PeerSettings | None = None,
        executor: Executor | None = None,
        clock: Callable[[], float] = time.monotonic,
        recording_path: Path | None = None,
        on_state: Callable[[PeerState], None] | None = None,
    ) -> None:
        self.settings = settings or PeerSettings()
        self._on_state = on_state
        self.stats = PeerStats()
        # Explicit servers, even none: aiortc's default would add a public STUN server.
        self._pc = RTCPeerConnection(RTCConfiguration(iceServers=list(ice_servers)))
        self._pc.on("track", self._on_track)
        self._pc.on("connectionstatechange", self._on_connection_state)
        self._own_executor = executor is None
        self._executor = executor or ThreadPoolExecutor(2, thread_name_prefix="capture")
        self._clock = clock
        self._ring = FrameRing(self.settings.ring_seconds, self.settings.ring_max_bytes)
        self._state = PeerState.NEW
        self._receiver: Any = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing: asyncio.Task[None] | None = None
        self._closed = asyncio.Event()
        self._frame_event = asyncio.Event()
        self._size = (0, 0)
        self._synced = False
        self._first_arrival: float | None = None
        self._last_media = 0.0
        self._last_pli = -1e9
        self._keyframe_wanted = False
        self._tracking: _Tracking | None = None
        self._recorder = SessionRecorder(recording_path, self._executor) if recording_path is not None else None

    # -- state -------------------------------------------------------------------------

    @property
    def state(self) -> PeerState:
        """The current lifecycle state."""
        return self._state

    def _set_state(self, state: PeerState) -> None:
        if state not in _MOVES[self._state]:
            raise PeerStateError(f"cannot go from {self._state.value} to {state.value}")
        logger.info("ServerCapturePeer %s -> %s", self._state.value, state.value)
        self._state = state
        if self._on_state is not None:
            self._on_state(state)

    @property
    def ring(self) -> FrameRing:
        """The in-memory ring of recent encoded frames (read-only use)."""
        return self._ring

    # -- signaling -----------------------------------------------------------------------

    async def answer(self, offer_sdp: str) -> str:
        """Accept the browser's offer; return the answer SDP (receive-only VP8 video)."""
        self._set_state(PeerState.CONNECTING)
        # Created before the offer is applied so that it is the one the offer's video
        # matches: codec preferences only count at that moment.
        video = self._pc.addTransceiver("video", direction="recvonly")
        capabilities = RTCRtpReceiver.getCapabilities("video")
        assert capabilities is not None
        # Only VP8 is stored as is (WebM); rtx keeps retransmissions working.
        video.setCodecPreferences([c for c in capabilities.codecs if c.mimeType.lower() in ("video/vp8", "video/rtx")])
        install_passthrough(video.receiver, self._on_frame)
        self._receiver = video.receiver
        await self._pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        if video.mid is None:
            raise ValueError("the offer carries no video")
        for transceiver in self._pc.getTransceivers():
            if transceiver is not video:
                transceiver.direction = "inactive"  # audio stays peer to peer, not here
        await self._pc.setLocalDescription(await self._pc.createAnswer())
        self._spawn(self._keyframe_cadence())
        if self._recorder is not None:
            self._recorder.start()
        return add_bitrate_hint(self._pc.localDescription.sdp, self.settings.bitrate)

    # -- media ---------------------------------------------------------------------------

    def _on_track(self, track: Any) -> None:
        # Always consume: aiortc's track queues are unbounded. With the passthrough, the
        # video track only ever yields its end; an inactive audio track never starts.
        self._spawn(self._drain(track))

    async def _drain(self, track: Any) -> None:
        try:
            while True:
                await track.recv()
        except MediaStreamError:
            if track.kind == "video" and self._state is not PeerState.CLOSED:
                logger.info("ServerCapturePeer video track ended")
                self._close_soon()

    def _on_frame(self, codec: str, data: bytes, rtp_timestamp: int) -> None:
        """Passthrough sink; runs on the event loop for every reassembled frame."""
        self._last_media = self._clock()
        header = parse_vp8_header(data) if codec == "VP8" else None
        if header is None:
            self._drop()
            return
        if header.keyframe:
            self._size, self._synced = (header.width, header.height), True
        elif not self._synced:
            self._drop()
            return
        now = self._clock()
        frame = EncodedFrame(data, rtp_timestamp, now, header.keyframe, *self._size)
        self.stats.frames += 1
        self.stats.keyframes += header.keyframe
        self.stats.bytes += len(data)
        if not self._ring.append(frame):
            self._keyframe_wanted = True
        if self._recorder is not None:
            self._recorder.offer(frame)
        if self._first_arrival is None:
            self._first_arrival = now
        if header.keyframe and self._state is PeerState.CONNECTING:
            self._set_state(PeerState.RECEIVING)
        self._notify()

    def _drop(self) -> None:
        # Everything up to the next keyframe would decode as garbage: skip it, ask for one.
        self.stats.dropped += 1
        self._synced = False
        self._keyframe_wanted = True

    def _notify(self) -> None:
        event, self._frame_event = self._frame_event, asyncio.Event()
        event.set()

    async def _next_frame(self, at_most: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._frame_event.wait(), at_most)

    async def wait_receiving(self) -> None:
        """Wait until the first keyframe is stored (wrap in asyncio.timeout)."""
        while self._state is not PeerState.RECEIVING:
            if self._state is PeerState.CLOSED:
                raise CaptureUnavailable("peer closed before receiving")
            await self._next_frame(0.1)

    # -- keyframes -----------------------------------------------------------------------

    async def request_keyframe(self) -> None:
        """Ask the sender for a keyframe now (RTCP PLI)."""
        if self._receiver is None or self._state is PeerState.CLOSED:
            return
        self._last_pli = self._clock()
        self.stats.plis += 1
        for source in self._receiver.getSynchronizationSources():
            # Private aiortc API (pinned, see passthrough.py); PLI to an RTX SSRC is ignored.
            await self._receiver._send_rtcp_pli(source.source)

    async def _keyframe_cadence(self) -> None:
        answered = self._clock()
        while True:
            await asyncio.sleep(_CADENCE_TICK)
            now = self._clock()
            last = self._ring.last_keyframe
            silent = now - self._last_media > self.settings.media_timeout
            if (self._state is PeerState.RECEIVING and silent) or (
                self._state is PeerState.CONNECTING and now - answered > self.settings.connect_timeout
            ):
                logger.warning("ServerCapturePeer: no media (%s), closing", self._state.value)
                self._close_soon()
                return
            stale = last is None or now - last.arrival >= self.settings.keyframe_interval
            if (stale or self._keyframe_wanted) and (now - self._last_pli >= self.settings.min_pli_interval):
                self._keyframe_wanted = False
                await self.request_keyframe()

    # -- capture -------------------------------------------------------------------------

    def mark_step_start(self, rule: StillRule = StillRule.PEAK_EXPRESSION) -> float:
        """Note that a protocol step starts now: keyframe, hold history, start scoring frames.

        Returns the start timestamp to pass to capture(); a capture with that start and the
        same rule reuses the frames already decoded, which keeps capture latency low.
        """
        if self._state is PeerState.CLOSED:
            raise PeerStateError("peer is closed")
        now = self._clock()
        self._ring.hold(now - self.settings.preroll_seconds)
        self._spawn(self.request_keyframe())
        if self._tracking is not None:
            self._tracking.stopped = True  # its task ends after its current batch
        window = self._ring.window(now, now)
        tracking = _Tracking(now, rule, window[0][0] if window else None)
        tracking.task = self._spawn(self._track(tracking))
        self._tracking = tracking
        return now

    async def _track(self, tracking: _Tracking) -> None:
        loop = asyncio.get_running_loop()
        while not tracking.stopped:
            if tracking.job is None:
                if self._first_arrival is None:
                    await self._next_frame(0.5)
                    continue
                tracking.job = self._new_job(tracking.rule, tracking.start)
                tracking.job.next_index = tracking.start_index
            job = tracking.job
            start = job.next_index if job.next_index is not None else self._ring.first_index
            batch = self._ring.since(start)[:_FEED_BATCH]
            if self._clock() - tracking.start > MAX_CLIP_SECONDS:
                # Too long to be a step (abandoned?): free the held history; a late
                # capture() falls back to decoding what is left.
                if self._tracking is tracking:
                    self._ring.release()
                return
            if batch:
                await loop.run_in_executor(self._executor, job.feed, batch)
            else:
                await self._next_frame(0.5)

    def _new_job(self, rule: StillRule, start: float) -> StillJob:
        first = self._first_arrival if self._first_arrival is not None else start
        return StillJob(rule, max(start, first + QUALITY_RAMP_SECONDS))

    async def _wait_until(self, end: float) -> None:
        deadline = max(end, self._clock()) + self.settings.end_wait_seconds
        while self._state is not PeerState.CLOSED:
            newest = self._ring.newest
            remaining = deadline - self._clock()
            if (newest is not None and newest.arrival >= end) or remaining <= 0:
                return
            await self._next_frame(remaining)

    async def _take_tracking(self, start: float, rule: StillRule) -> StillJob | None:
        tracking = self._tracking
        if tracking is None or tracking.start != start or tracking.rule is not rule:
            return None
        self._tracking = None
        tracking.stopped = True
        self._notify()
        if tracking.task is not None:
            await tracking.task  # lets its in-flight batch finish: the job is not thread-safe
        return tracking.job

    async def capture(
        self,
        step_id: str,
        start: float,
        end: float,
        *,
        still: bool = True,
        clip: bool = True,
        rule: StillRule = StillRule.PEAK_EXPRESSION,
    ) -> StreamCaptureResult:
        """Capture the window [start, end]: a still (best frame) and/or a pre-rolled clip."""
        if not start < end or end - start > MAX_CLIP_SECONDS:
            raise ValueError(f"bad capture window [{start}, {end}]")
        if not (still or clip):
            raise ValueError("capture needs a still, a clip, or both")
        if self._state is PeerState.CLOSED:
            raise CaptureUnavailable("peer is closed")
        await self._wait_until(end)
        job = await self._take_tracking(start, rule)
        if self._tracking is None:
            self._ring.release()
        loop = asyncio.get_running_loop()
        clip_future = None
        if clip:
            clip_frames = [f for _, f in self._ring.window(start - self.settings.preroll_seconds, end)]
            if not clip_frames:
                raise CaptureUnavailable("no frames in the capture window")
            clip_future = loop.run_in_executor(self._executor, remux_webm, clip_frames, start)
        still_future = None
        if still:
            window = self._ring.window(start, end)
            if job is None or job.next_index is None:
                job = self._new_job(rule, start)
                remaining = window
            else:
                remaining = [(i, f) for i, f in self._ring.since(job.next_index) if f.arrival <= end]
            still_future = loop.run_in_executor(
                self._executor, finish_still, job, remaining, end, window, self.settings.still_png
            )
        # Both run in the executor concurrently; wait for both so no failure goes unseen.
        pending = [f for f in (clip_future, still_future) if f is not None]
        for outcome in await asyncio.gather(*pending, return_exceptions=True):
            if isinstance(outcome, BaseException):
                raise outcome
        made_clip = clip_future.result() if clip_future is not None else None
        still_image, scores = still_future.result() if still_future is not None else (None, None)
        return StreamCaptureResult(step_id, start, end, still_image, scores, made_clip)

    # -- lifecycle -----------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _on_connection_state(self) -> None:
        if self._pc.connectionState in ("failed", "closed"):
            logger.info("ServerCapturePeer connection %s", self._pc.connectionState)
            self._close_soon()

    def _close_soon(self) -> None:
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._shutdown())

    async def close(self) -> None:
        """Close the connection and stop every task; safe to call more than once."""
        self._close_soon()
        assert self._closing is not None
        await asyncio.shield(self._closing)

    async def wait_closed(self) -> None:
        """Wait until the peer has closed (by close(), a failed connection, or a lost client)."""
        await self._closed.wait()

    async def _shutdown(self) -> None:
        if self._state is not PeerState.CLOSED:
            self._set_state(PeerState.CLOSED)
        self._notify()
        await self._pc.close()  # stops the receiver: aiortc's idle decoder thread exits
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._recorder is not None:
            await self._recorder.close()
        self._ring = FrameRing(self.settings.ring_seconds, self.settings.ring_max_bytes)
        if self._own_executor:
            # Our awaits are done; an abandoned decode may still run and is simply dropped.
            self._executor.shutdown(wait=False, cancel_futures=True)
        self._closed.set()
