"""Quality flags of a still: is it usable for grading? Blocking (Pillow): use an executor.

Thresholds are the clinical brief's proposals (capture-protocol.md, "Capture quality") and
are to be tuned with clinicians. Only the picture-level checks run here; the face-level ones
(one face, head pose, iris size) need landmarks and are listed as not run, so nobody reads
a missing flag as a passed check.
"""

from __future__ import annotations

import io
from typing import Literal

from PIL import Image, ImageStat

from telehealth.records.quality import QUALITY_VERSION, CaptureQuality, StillSelection

from .result import StillScores

__all__ = ["QUALITY_VERSION", "assess_still", "assess_still_bytes"]
MIN_WIDTH, MIN_HEIGHT = 800, 600  # ATA teledermatology minimum
MAX_SIDE_IMBALANCE = 0.20  # left/right halves of the face within about +-20 % brightness
DARK, BRIGHT = 60.0, 200.0  # mean luma of the central region, 0-255
CLIPPED_LEVEL = 250
MAX_CLIPPED_FRACTION = 0.02
_CENTER = (0.25, 0.10, 0.75, 0.90)  # where a framed face is: left, top, right, bottom
_PREVIEW_WIDTH = 320
NOT_RUN = ("face_count", "head_pose", "iris_size")


def _center(gray: Image.Image) -> Image.Image:
    w, h = gray.size
    return gray.crop((int(w * _CENTER[0]), int(h * _CENTER[1]), int(w * _CENTER[2]), int(h * _CENTER[3])))


def assess_still(
    image: Image.Image,
    width: int,
    height: int,
    *,
    source: Literal["stream", "device"],
    scores: StillScores | None = None,
) -> CaptureQuality:
    """Quality figures and flags of a still; ``image`` may be a reduced preview of it."""
    gray = image.convert("L")
    if gray.width > _PREVIEW_WIDTH:  # the figures are means: a preview gives the same answer faster
        gray = gray.resize((_PREVIEW_WIDTH, max(1, round(gray.height * _PREVIEW_WIDTH / gray.width))))
    center = _center(gray)
    cw, ch = center.size
    # Image left/right as the camera saw it (never mirrored): image left is the patient's right.
    left = ImageStat.Stat(center.crop((0, 0, cw // 2, ch))).mean[0]
    right = ImageStat.Stat(center.crop((cw // 2, 0, cw, ch))).mean[0]
    brightness = ImageStat.Stat(center).mean[0]
    histogram = center.histogram()
    clipped = sum(histogram[CLIPPED_LEVEL:]) / max(1, cw * ch)
    imbalance = abs(left - right) / max(left, right, 1.0)
    flags = []
    if width < MIN_WIDTH or height < MIN_HEIGHT:
        flags.append("low_resolution")
    if brightness < DARK:
        flags.append("too_dark")
    if brightness > BRIGHT:
        flags.append("too_bright")
    if imbalance > MAX_SIDE_IMBALANCE:
        flags.append("uneven_light")
    if clipped > MAX_CLIPPED_FRACTION:
        flags.append("clipped_highlights")
    selection = None
    if scores is not None:
        selection = StillSelection(
            rule=scores.rule.value,
            expression=round(scores.expression, 2),
            sharpness=round(scores.sharpness, 1),
            sharpness_threshold=round(scores.sharpness_threshold, 1),
            candidates=scores.candidates,
        )
    return CaptureQuality(
        version=QUALITY_VERSION,
        source=source,
        width=width,
        height=height,
        brightness=round(brightness, 1),
        brightness_image_left=round(left, 1),
        brightness_image_right=round(right, 1),
        side_imbalance=round(imbalance, 3),
        clipped_fraction=round(clipped, 4),
        flags=flags,
        ok=not flags,
        not_run=list(NOT_RUN),
        selection=selection,
    )


def assess_still_bytes(
    preview: bytes,
    width: int,
    height: int,
    *,
    source: Literal["stream", "device"],
    scores: StillScores | None = None,
) -> CaptureQuality:
    """assess_still() on an encoded preview (the still's JPEG thumbnail is enough)."""
    with Image.open(io.BytesIO(preview)) as image:
        return assess_still(image, width, height, source=source, scores=scores)
