"""Pick the best still of a capture window, and encode it. Blocking: use an executor.

The rule (documented for clinicians in result.StillScores):
- Candidates are frames of the window that arrived at least ``QUALITY_RAMP_SECONDS`` after
  the stream's first frame (Chromium starts every stream at low quality).
- Features come from the luma plane's central region (where the framed face is): a
  fixed-size thumbnail for expression, a fixed-width crop for sharpness, so streams of
  different resolutions score alike.
- A candidate is sharp if its variance of Laplacian is at least ``SHARP_FRACTION`` of the
  maximum among the window's frames of the same picture size (a bandwidth drop to a lower
  resolution mid-step must not disqualify the peak; the still's size is reported).
- PEAK_EXPRESSION: among sharp candidates, the largest mean absolute difference from the
  baseline (the first candidate: the face before the movement).
  SHARPEST: the sharpest candidate (the resting face).
"""

from __future__ import annotations

import heapq
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, ImageChops, ImageFilter, ImageStat

from .decode import Vp8Decoder
from .frames import EncodedFrame
from .protocol import StillRule
from .result import CaptureUnavailable, StillImage, StillScores
from .thumbnail import thumbnail_of

__all__ = [
    "QUALITY_RAMP_SECONDS",
    "SHARP_FRACTION",
    "StillJob",
    "StillUnavailable",
    "finish_still",
]

QUALITY_RAMP_SECONDS = 1.5
SHARP_FRACTION = 0.6
KEEP_DECODED = 6  # best candidates kept decoded (720p yuv420: 1.4 MB each)
_CENTER = (0.25, 0.12, 0.75, 0.88)  # left, top, right, bottom as fractions of the picture
_EXPRESSION_SIZE = (96, 112)
_SHARPNESS_WIDTH = 320
_LAPLACIAN = ImageFilter.Kernel((3, 3), [0, 1, 0, 1, -4, 1, 0, 1, 0], scale=1, offset=128)


class StillUnavailable(CaptureUnavailable):
    """The window holds no frame that can become a still."""


@dataclass(slots=True)
class _Record:
    index: int
    arrival: float
    pixels: int
    expression: float
    sharpness: float


def _luma(picture: Any) -> Image.Image:
    """The central region of an av.VideoFrame's Y plane (it is already grayscale)."""
    plane = picture.planes[0]
    luma = Image.frombuffer("L", (picture.width, picture.height), bytes(plane), "raw", "L", plane.line_size, 1)
    w, h = luma.size
    box = (int(w * _CENTER[0]), int(h * _CENTER[1]), int(w * _CENTER[2]), int(h * _CENTER[3]))
    return luma.crop(box)


def _sharpness(center: Image.Image) -> float:
    scale = _SHARPNESS_WIDTH / center.width
    fixed = center.resize((_SHARPNESS_WIDTH, max(1, round(center.height * scale))), Image.Resampling.BOX)
    return float(ImageStat.Stat(fixed.filter(_LAPLACIAN)).var[0])


@dataclass
class StillJob:
    """Decode a window's frames as they come and score them; choose() picks the still."""

    rule: StillRule
    eligible_from: float  # max(window start, stream start + quality ramp)
    next_index: int | None = None
    records: list[_Record] = field(default_factory=list)
    _decoder: Vp8Decoder = field(default_factory=Vp8Decoder)
    _baseline: Image.Image | None = None
    _baseline_arrival: float = 0.0
    _kept: list[tuple[float, int, Any]] = field(default_factory=list)  # min-heap

    def feed(self, frames: Sequence[tuple[int, EncodedFrame]]) -> None:
        """Decode and score (absolute index, frame) pairs that follow the previous feed."""
        for index, frame in frames:
            if self.next_index is not None and index != self.next_index:
                self._decoder.reset()  # a gap: the ring evicted or refused frames
            self.next_index = index + 1
            picture = self._decoder.decode(frame)
            if picture is not None and frame.arrival >= self.eligible_from:
                self._score(index, frame, picture)

    def _score(self, index: int, frame: EncodedFrame, picture: Any) -> None:
        center = _luma(picture)
        small = center.resize(_EXPRESSION_SIZE, Image.Resampling.BOX)
        if self._baseline is None:
            self._baseline, self._baseline_arrival = small, frame.arrival
        expression = float(ImageStat.Stat(ImageChops.difference(small, self._baseline)).mean[0])
        record = _Record(index, frame.arrival, picture.width * picture.height, expression, _sharpness(center))
        self.records.append(record)
        key = expression if self.rule is StillRule.PEAK_EXPRESSION else record.sharpness
        entry = (key, index, picture)
        if len(self._kept) < KEEP_DECODED:
            heapq.heappush(self._kept, entry)
        elif key > self._kept[0][0]:
            heapq.heapreplace(self._kept, entry)

    def choose(self, end: float) -> tuple[_Record, StillScores, Any | None]:
        """The winning record up to ``end``, its scores, and its picture if still decoded."""
        pool = [r for r in self.records if r.arrival <= end]
        if not pool:
            raise StillUnavailable("no decodable frame after the quality ramp in the window")
        best_sharpness: dict[int, float] = {}
        for r in pool:
            best_sharpness[r.pixels] = max(best_sharpness.get(r.pixels, 0.0), r.sharpness)
        sharp = [r for r in pool if r.sharpness >= SHARP_FRACTION * best_sharpness[r.pixels]]
        if self.rule is StillRule.PEAK_EXPRESSION:
            best = max(sharp, key=lambda r: (r.expression, r.sharpness))
        else:
            best = max(sharp, key=lambda r: r.sharpness)
        threshold = SHARP_FRACTION * best_sharpness[best.pixels]
        scores = StillScores(self.rule, best.expression, best.sharpness, threshold, len(pool), self._baseline_arrival)
        picture = next((p for _, i, p in self._kept if i == best.index), None)
        return best, scores, picture


def _redecode(frames: Sequence[tuple[int, EncodedFrame]], index: int) -> Any:
    decoder = Vp8Decoder()
    picture = None
    for i, frame in frames:
        picture = decoder.decode(frame)
        if i == index:
            break
    if picture is None:
        raise StillUnavailable(f"frame {index} could not be decoded again")
    return picture


def finish_still(
    job: StillJob,
    remaining: Sequence[tuple[int, EncodedFrame]],
    end: float,
    window: Sequence[tuple[int, EncodedFrame]],
    png: bool = True,
) -> tuple[StillImage, StillScores]:
    """Feed the last frames, choose, and encode the still (PNG, or JPEG q95) and thumbnail."""
    job.feed(remaining)
    best, scores, picture = job.choose(end)
    if picture is None:
        picture = _redecode(window, best.index)  # rare: the winner was not among those kept
    # to_image() converts the pixels as they are: no flip, ever (the stream is what the
    # camera sees; only the patient's self-view is mirrored, in the browser).
    image = picture.to_image()
    out = io.BytesIO()
    if png:
        image.save(out, "PNG", compress_level=1)  # lossless; level 1 keeps capture fast
    else:
        image.save(out, "JPEG", quality=95)
    still = StillImage(
        data=out.getvalue(),
        content_type="image/png" if png else "image/jpeg",
        width=image.width,
        height=image.height,
        timestamp=best.arrival,
        thumbnail=thumbnail_of(image),
    )
    return still, scores
