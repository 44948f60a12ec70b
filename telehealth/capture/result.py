"""The typed values a capture returns; storing them is the media store's job."""

from __future__ import annotations

from dataclasses import dataclass

from .protocol import StillRule

__all__ = ["CaptureUnavailable", "Clip", "StillImage", "StillScores", "StreamCaptureResult"]

PROVENANCE_CALL_STREAM = "call_stream"


class CaptureUnavailable(RuntimeError):
    """The stream holds nothing usable for the requested window (not started, evicted, closed)."""


def _check_size(width: int, height: int) -> None:
    if width <= 0 or height <= 0:
        raise ValueError(f"invalid size {width}x{height}")


@dataclass(frozen=True, slots=True)
class StillScores:
    """Why this frame: the selection rule's inputs for the chosen frame and its window."""

    rule: StillRule
    expression: float  # mean abs luma difference from the baseline, central region, 0-255
    sharpness: float  # variance of the Laplacian, central region at a fixed scale
    sharpness_threshold: float  # frames below it were not eligible
    candidates: int  # eligible frames scored in the window
    baseline_timestamp: float  # the frame expression is measured against


@dataclass(frozen=True, slots=True)
class StillImage:
    """The chosen frame at the stream's full resolution, never mirrored, and its thumbnail."""

    data: bytes
    content_type: str
    width: int
    height: int
    timestamp: float  # arrival of the chosen frame, server monotonic clock
    thumbnail: bytes
    thumbnail_content_type: str = "image/jpeg"

    def __post_init__(self) -> None:
        _check_size(self.width, self.height)
        if not self.data or not self.thumbnail:
            raise ValueError("a still needs image and thumbnail bytes")


@dataclass(frozen=True, slots=True)
class Clip:
    """A stream-copied WebM/VP8 clip whose timestamps start at 0 on a keyframe."""

    data: bytes
    content_type: str
    duration: float  # seconds
    frame_count: int
    width: int  # of the first frame; see resolution_changed
    height: int
    start_timestamp: float  # arrival of the first (key)frame, server monotonic clock
    preroll: float  # seconds of the clip before the requested window start
    resolution_changed: bool

    def __post_init__(self) -> None:
        _check_size(self.width, self.height)
        if self.frame_count < 1 or self.duration <= 0:
            raise ValueError("a clip needs at least one frame and a positive duration")


@dataclass(frozen=True, slots=True)
class StreamCaptureResult:
    """What one protocol step captured from the call stream."""

    step_id: str
    window_start: float
    window_end: float
    still: StillImage | None
    scores: StillScores | None
    clip: Clip | None
    provenance: str = PROVENANCE_CALL_STREAM

    def __post_init__(self) -> None:
        if self.window_end <= self.window_start:
            raise ValueError("a capture window must end after it starts")
        if (self.still is None) != (self.scores is None):
            raise ValueError("a still comes with its scores")
