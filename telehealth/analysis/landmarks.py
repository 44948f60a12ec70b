"""MediaPipe Face Mesh (478 landmarks with iris refinement) on one decoded still.

The model ships inside the pinned ``mediapipe`` wheel, so this works offline. Loading it takes
seconds and it is CPU-bound: create one :class:`Detector` per worker process (see ``pool``), never
on the event loop.
"""

from __future__ import annotations

import io
import os
import time
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any, Final, Literal

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps

from telehealth.analysis.indices import N_LANDMARKS

MODEL: Final = "mediapipe-face-mesh-refined"
CODE_VERSION: Final = "1"
"""Bumped when the measurement definitions change, so re-measured rows can be told apart."""
MAX_PIXELS: Final = 40_000_000  # stills are re-encoded and pixel-limited on upload; archives may not be

Status = Literal["ok", "no_face", "several_faces", "error"]


def model_version() -> str:
    """The installed mediapipe version (the model is the one inside that wheel)."""
    return version("mediapipe")


@dataclass(frozen=True, slots=True)
class Detection:
    """What the detector found in one still; landmarks in image pixels (x, y, z scaled like x)."""

    status: Status
    width: int
    height: int
    landmarks: NDArray[np.float64] | None = None
    decode_ms: float = 0.0
    detect_ms: float = 0.0
    error: str | None = None


def decode_still(data: bytes) -> NDArray[np.uint8]:
    """Image bytes to an RGB array, upright per EXIF orientation (device photos from archives carry it)."""
    with Image.open(io.BytesIO(data)) as img:
        if img.width * img.height > MAX_PIXELS:
            raise ValueError(f"image too large: {img.width}x{img.height}")
        upright = ImageOps.exif_transpose(img).convert("RGB")
    return np.asarray(upright, dtype=np.uint8)


JITTER_OFFSETS: Final = ((0, 0), (8, 3), (-3, 8), (-8, -5), (5, -8), (-5, 0))
"""Pixel shifts (dx, dy) of the copies whose landmarks are averaged (the first is the still itself)."""
DEFAULT_RUNS: Final = 4


class Detector:
    """One loaded Face Mesh model; not thread-safe, one per process.

    ``runs`` > 1 averages the landmarks of the still and ``runs - 1`` copies shifted by a few pixels:
    the model's crop follows its face detector, and a 1-pixel shift of the input moves single
    landmarks by up to 2 px (0.7 mm on a 720p still), beyond the 0.2 mm repeatability goal.
    Averaging 4 runs roughly halves that at 4 times the cost.
    """

    def __init__(self, runs: int = DEFAULT_RUNS) -> None:
        if not 1 <= runs <= len(JITTER_OFFSETS):
            raise ValueError(f"runs must be 1..{len(JITTER_OFFSETS)}")
        self.runs = runs
        os.environ.setdefault("GLOG_minloglevel", "2")  # the graph logs every start to stderr otherwise
        import mediapipe as mp  # heavy import (seconds): only where the model is used

        self._mesh: Any = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=True, refine_landmarks=True, max_num_faces=2, min_detection_confidence=0.5
        )

    def detect(self, rgb: NDArray[np.uint8]) -> Detection:
        """Landmarks of the one face in an RGB image; status tells no face or several faces apart."""
        height, width = int(rgb.shape[0]), int(rgb.shape[1])
        start = time.perf_counter()
        runs: list[NDArray[np.float64]] = []
        for dx, dy in JITTER_OFFSETS[: self.runs]:
            shifted = rgb if (dx, dy) == (0, 0) else np.roll(rgb, (dy, dx), axis=(0, 1))
            faces = self._mesh.process(np.ascontiguousarray(shifted)).multi_face_landmarks or []
            if len(faces) != 1 or len(faces[0].landmark) != N_LANDMARKS:
                if not runs:  # the still itself decides whether there is exactly one face
                    ms = (time.perf_counter() - start) * 1000.0
                    status: Status = "no_face" if not faces else "several_faces" if len(faces) > 1 else "error"
                    return Detection(status, width, height, detect_ms=ms)
                continue  # a shifted copy that lost the face adds nothing
            pts = np.array([(p.x * width, p.y * height, p.z * width) for p in faces[0].landmark], dtype=np.float64)
            pts[:, 0] -= dx
            pts[:, 1] -= dy
            runs.append(pts)
        detect_ms = (time.perf_counter() - start) * 1000.0
        return Detection("ok", width, height, landmarks=np.mean(runs, axis=0), detect_ms=detect_ms)

    def detect_bytes(self, data: bytes) -> Detection:
        """Decode and detect; an undecodable image is an ``error`` detection, not an exception."""
        start = time.perf_counter()
        try:
            rgb = decode_still(data)
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            return Detection("error", 0, 0, error=f"cannot decode image: {exc}"[:200])
        decode_ms = (time.perf_counter() - start) * 1000.0
        found = self.detect(rgb)
        return Detection(
            found.status, found.width, found.height, found.landmarks, decode_ms, found.detect_ms, found.error
        )

    def close(self) -> None:
        """Release the graph."""
        self._mesh.close()
