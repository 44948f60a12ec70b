"""A continuous, stream-copied WebM of a whole session, written off the event loop."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Executor
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from .frames import VP8_CLOCK_RATE, EncodedFrame

__all__ = ["SessionRecorder"]

logger = logging.getLogger(__name__)

_BATCH = 60  # frames per executor call: one call per ~2 s at 30 fps when keeping up


class _WebmWriter:
    """Blocking muxer state; only ever used by one executor call at a time."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._container: Any = None
        self._stream: Any = None
        self._origin = 0
        self._last_pts = -1
        self.frames = 0

    def write(self, frames: list[EncodedFrame]) -> None:
        for frame in frames:
            if self._container is None:
                if not frame.keyframe:
                    continue
                self._open(frame)
            # RTP time from the first frame; strictly increasing as Matroska requires.
            pts = max(frame.rtp_timestamp - self._origin, self._last_pts + 1)
            packet = av.Packet(frame.data)
            packet.stream = self._stream
            packet.time_base = Fraction(1, VP8_CLOCK_RATE)
            packet.pts = packet.dts = self._last_pts = pts
            packet.is_keyframe = frame.keyframe
            self._container.mux(packet)
            self.frames += 1

    def _open(self, first: EncodedFrame) -> None:
        self._container = av.open(str(self._path), "w", format="webm")
        self._stream = self._container.add_stream("vp8")
        # The first keyframe's size; later keyframes may change it, which VP8 decoders follow.
        self._stream.width, self._stream.height = first.width, first.height
        self._stream.time_base = Fraction(1, 1000)
        self._origin = first.rtp_timestamp

    def close(self) -> None:
        if self._container is not None:
            self._container.close()


class SessionRecorder:
    """Appends every stored frame to one WebM file; drops to the next keyframe if behind."""

    def __init__(self, path: Path, executor: Executor, max_pending: int = 300) -> None:
        self.path = path
        self._executor = executor
        self._queue: asyncio.Queue[EncodedFrame] = asyncio.Queue(maxsize=max_pending)
        self._writer = _WebmWriter(path)
        self._task: asyncio.Task[None] | None = None
        self._inflight: asyncio.Future[None] | None = None
        self._resync = False
        self.dropped = 0

    def start(self) -> None:
        """Start the writer task."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    def offer(self, frame: EncodedFrame) -> None:
        """Queue a frame (called on the event loop); never blocks."""
        if self._resync and not frame.keyframe:
            self.dropped += 1
            return
        try:
            self._queue.put_nowait(frame)
            self._resync = False
        except asyncio.QueueFull:
            # The disk or the executor cannot keep up: skip to the next keyframe so the
            # file stays decodable, rather than grow memory.
            self.dropped += 1
            self._resync = True

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            while len(batch) < _BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            self._inflight = loop.run_in_executor(self._executor, self._writer.write, batch)
            # Shielded: a cancelled task must not leave a write running behind close().
            await asyncio.shield(self._inflight)

    async def close(self) -> int:
        """Write what is queued, finish the file; return the number of frames written."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._inflight is not None:
            await asyncio.gather(self._inflight, return_exceptions=True)
        pending = []
        while not self._queue.empty():
            pending.append(self._queue.get_nowait())
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._finish, pending)
        if self.dropped:
            logger.warning("SessionRecorder %s dropped %d frames", self.path, self.dropped)
        return self._writer.frames

    def _finish(self, pending: list[EncodedFrame]) -> None:
        self._writer.write(pending)
        self._writer.close()
