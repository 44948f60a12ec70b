"""FrameRing: bounded by seconds and bytes, always starting at a keyframe."""

from telehealth.capture.frames import EncodedFrame
from telehealth.capture.ring import FrameRing


def _stream(seconds: float, gop: int = 30, fps: int = 30, size: int = 1000) -> list[EncodedFrame]:
    return [EncodedFrame(b"x" * size, i * 3000, i / fps, i % gop == 0, 640, 480) for i in range(int(seconds * fps))]


def _fill(ring: FrameRing, frames: list[EncodedFrame]) -> None:
    for frame in frames:
        ring.append(frame)


def test_keeps_at_least_max_seconds_and_starts_at_a_keyframe() -> None:
    ring = FrameRing(max_seconds=4.0)
    _fill(ring, _stream(20))
    frames = list(ring)
    assert frames[0].keyframe
    assert 4.0 <= ring.duration() <= 4.0 + 1.0  # plus at most one GOP
    assert ring.nbytes == sum(f.size for f in frames)


def test_byte_cap_wins_and_keeps_gop_alignment() -> None:
    ring = FrameRing(max_seconds=100.0, max_bytes=95_000)
    _fill(ring, _stream(20))
    assert ring.nbytes <= 95_000 and next(iter(ring)).keyframe
    assert len(ring) >= 60  # two whole GOPs still fit


def test_a_gop_bigger_than_the_cap_is_dropped_whole() -> None:
    ring = FrameRing(max_seconds=100.0, max_bytes=10_000)
    _fill(ring, _stream(1.0, gop=1000))
    assert len(ring) == 0 and ring.nbytes == 0
    assert not ring.append(EncodedFrame(b"x", 99_000, 1.1, False, 640, 480))
    assert ring.append(EncodedFrame(b"x", 99_000, 1.2, True, 640, 480))


def test_delta_frames_without_keyframe_are_refused() -> None:
    ring = FrameRing()
    assert not ring.append(EncodedFrame(b"x", 0, 0.0, False, 640, 480))
    assert len(ring) == 0
    assert ring.append(EncodedFrame(b"k", 3000, 0.03, True, 640, 480))
    assert ring.first_index == 1  # indices count every offered frame


def test_hold_keeps_a_long_window() -> None:
    ring = FrameRing(max_seconds=4.0)
    frames = _stream(40)
    _fill(ring, frames[:300])  # up to t=10 s
    ring.hold(9.0)
    _fill(ring, frames[300:])  # to t=40 s
    assert next(iter(ring)).arrival <= 9.0  # the keyframe before the hold survived
    ring.release()
    ring.append(EncodedFrame(b"k", 10**6, 40.0, True, 640, 480))
    assert ring.duration() <= 5.1


def test_window_starts_at_the_keyframe_before_start() -> None:
    ring = FrameRing(max_seconds=10.0)
    _fill(ring, _stream(8))
    window = ring.window(3.5, 5.0)
    assert window[0][1].keyframe and window[0][1].arrival == 3.0
    assert window[-1][1].arrival <= 5.0 < window[-1][1].arrival + 0.04
    indices = [i for i, _ in window]
    assert indices == list(range(indices[0], indices[0] + len(indices)))
    assert next(f for _, f in ring.since(indices[-1])) is window[-1][1]
