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


class Detector:
    """One loaded Face Mesh model; not thread-safe, one per process."""

    def __init__(self) -> None:
        os.environ.setdefault("GLOG_minloglevel", "2")  # the graph logs every start to stderr otherwise
        import mediapipe as mp  # heavy import (seconds): only where the model is used

        self._mesh: Any = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=True, refine_landmarks=True, max_num_faces=2, min_detection_confidence=0.5
        )

    def detect(self, rgb: NDArray[np.uint8]) -> Detection:
        """Landmarks of the one face in an RGB image; status tells no face or several faces apart."""
        height, width = int(rgb.shape[0]), int(rgb.shape[1])
        start = time.perf_counter()
        result = self._mesh.process(np.ascontiguousarray(rgb))
        detect_ms = (time.perf_counter() - start) * 1000.0
        faces = result.multi_face_landmarks or []
        if not faces:
            return Detection("no_face", width, height, detect_ms=detect_ms)
        if len(faces) > 1:
            return Detection("several_faces", width, height, detect_ms=detect_ms)
        pts = np.array([(p.x * width, p.y * height, p.z * width) for p in faces[0].landmark], dtype=np.float64)
        if pts.shape != (N_LANDMARKS, 3):
            return Detection("error", width, height, detect_ms=detect_ms, error=f"got {pts.shape[0]} landmarks")
        return Detection("ok", width, height, landmarks=pts, detect_ms=detect_ms)

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
