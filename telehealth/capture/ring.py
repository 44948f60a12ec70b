"""A bounded in-memory ring of recent encoded frames that always starts at a keyframe."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator
from itertools import islice

from .frames import EncodedFrame

__all__ = ["FrameRing"]


class FrameRing:
    """Recent frames, evicted a whole GOP at a time so every kept frame stays decodable.

    ``max_seconds`` is the history always kept (plus up to one GOP, since eviction waits
    for the next keyframe); ``max_bytes`` is a hard cap that wins over everything,
    including a hold. A hold keeps the frames needed for a window starting at
    ``hold_since`` (the spontaneous step's clip is longer than the ring).
    """

    def __init__(self, max_seconds: float = 12.0, max_bytes: int = 48 * 1024 * 1024) -> None:
        if max_seconds <= 0 or max_bytes <= 0:
            raise ValueError("ring bounds must be positive")
        self.max_seconds = max_seconds
        self.max_bytes = max_bytes
        self._frames: deque[EncodedFrame] = deque()
        self._keyframes: deque[int] = deque()  # absolute indices of keyframes in the ring
        self._first_index = 0  # absolute index of _frames[0]
        self._bytes = 0
        self._hold_since = math.inf

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def nbytes(self) -> int:
        """Encoded bytes held."""
        return self._bytes

    @property
    def next_index(self) -> int:
        """Absolute index the next appended frame will get."""
        return self._first_index + len(self._frames)

    @property
    def first_index(self) -> int:
        """Absolute index of the oldest frame held."""
        return self._first_index

    @property
    def newest(self) -> EncodedFrame | None:
        """The most recent frame, if any."""
        return self._frames[-1] if self._frames else None

    @property
    def last_keyframe(self) -> EncodedFrame | None:
        """The most recent keyframe held, if any."""
        if not self._keyframes:
            return None
        return self._frames[self._keyframes[-1] - self._first_index]

    def duration(self) -> float:
        """Seconds of arrival time spanned by the held frames."""
        if not self._frames:
            return 0.0
        return self._frames[-1].arrival - self._frames[0].arrival

    def append(self, frame: EncodedFrame) -> bool:
        """Add a frame; False if refused (a delta frame with no keyframe to decode it from)."""
        if not self._frames and not frame.keyframe:
            self._first_index += 1  # keep absolute indices counting every offered frame
            return False
        if frame.keyframe:
            self._keyframes.append(self.next_index)
        self._frames.append(frame)
        self._bytes += frame.size
        self._evict(frame.arrival)
        return bool(self._frames)

    def hold(self, since: float) -> None:
        """Keep the frames a window starting at ``since`` needs, until release()."""
        self._hold_since = since

    def release(self) -> None:
        """End the hold: ordinary bounds apply again."""
        self._hold_since = math.inf

    def since(self, index: int) -> list[tuple[int, EncodedFrame]]:
        """(absolute index, frame) pairs from ``index`` on (frames already evicted are gone)."""
        start = max(0, index - self._first_index)
        return list(enumerate(islice(self._frames, start, None), self._first_index + start))

    def window(self, start: float, end: float) -> list[tuple[int, EncodedFrame]]:
        """(index, frame) from the keyframe at/just before ``start`` to the last at/before ``end``.

        If ``start`` is older than the ring, the window starts at the ring's first keyframe.
        """
        begin = 0
        for index in self._keyframes:
            if self._frames[index - self._first_index].arrival > start:
                break
            begin = index - self._first_index
        pairs = enumerate(islice(self._frames, begin, None), self._first_index + begin)
        return [(i, f) for i, f in pairs if f.arrival <= end]

    def __iter__(self) -> Iterator[EncodedFrame]:
        return iter(self._frames)

    def _evict(self, now: float) -> None:
        while len(self._keyframes) >= 2:
            second = self._frames[self._keyframes[1] - self._first_index]
            too_big = self._bytes > self.max_bytes
            cutoff = min(now - self.max_seconds, self._hold_since)
            too_old = second.arrival <= cutoff
            if not (too_big or too_old):
                return
            self._drop_first_gop()
        if self._bytes > self.max_bytes:
            # One GOP larger than the cap: nothing decodable can be kept; wait for a keyframe.
            self._drop_first_gop()

    def _drop_first_gop(self) -> None:
        self._keyframes.popleft()
        stop = self._keyframes[0] if self._keyframes else self.next_index
        while self._first_index < stop:
            self._bytes -= self._frames.popleft().size
            self._first_index += 1
