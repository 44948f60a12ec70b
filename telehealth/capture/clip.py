"""Stream-copy encoded frames into a WebM clip (no decode, no re-encode). Blocking: use an
executor."""

from __future__ import annotations

import io
from collections.abc import Sequence
from fractions import Fraction
from itertools import pairwise
from statistics import median

import av

from .frames import VP8_CLOCK_RATE, EncodedFrame
from .result import Clip

__all__ = ["WEBM", "remux_webm"]

WEBM = "video/webm"
_RTP_TIME_BASE = Fraction(1, VP8_CLOCK_RATE)
_DEFAULT_FRAME_TICKS = VP8_CLOCK_RATE // 30


def _pts(frames: Sequence[EncodedFrame]) -> list[int]:
    """90 kHz presentation times starting at 0, strictly increasing even if RTP time is not."""
    origin = frames[0].rtp_timestamp
    out: list[int] = []
    for frame in frames:
        pts = frame.rtp_timestamp - origin
        out.append(pts if not out or pts > out[-1] else out[-1] + 1)
    return out


def remux_webm(frames: Sequence[EncodedFrame], window_start: float) -> Clip:
    """Mux frames (the first a keyframe) into an in-memory WebM, timestamps from 0."""
    if not frames or not frames[0].keyframe:
        raise ValueError("a clip must start with a keyframe")
    pts = _pts(frames)
    gaps = [b - a for a, b in pairwise(pts)]
    # The last frame lasts a typical frame interval, so duration = frames shown.
    durations = [*gaps, int(median(gaps)) if gaps else _DEFAULT_FRAME_TICKS]
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="webm") as container:
        stream = container.add_stream("vp8")
        stream.width, stream.height = frames[0].width, frames[0].height
        stream.time_base = Fraction(1, 1000)
        for frame, at, lasts in zip(frames, pts, durations, strict=True):
            packet = av.Packet(frame.data)
            packet.stream = stream
            packet.time_base = _RTP_TIME_BASE  # mux() rescales to the stream's time base
            packet.pts = packet.dts = at
            packet.duration = lasts
            packet.is_keyframe = frame.keyframe
            container.mux(packet)
    return Clip(
        data=buffer.getvalue(),
        content_type=WEBM,
        duration=(pts[-1] + durations[-1]) / VP8_CLOCK_RATE,
        frame_count=len(frames),
        width=frames[0].width,
        height=frames[0].height,
        start_timestamp=frames[0].arrival,
        preroll=max(0.0, window_start - frames[0].arrival),
        resolution_changed=any((f.width, f.height) != (frames[0].width, frames[0].height) for f in frames),
    )
