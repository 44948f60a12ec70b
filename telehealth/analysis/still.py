"""One still from bytes to landmarks and its own-scale metrics (what a worker process computes)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from telehealth.analysis.frame import Points, Scale
from telehealth.analysis.landmarks import Detection, Detector
from telehealth.analysis.metrics import measure, pose_deg


def summary(points: Points) -> dict[str, Any]:
    """A still's metrics at its own iris scale, with that scale and the head pose (JSON-ready).

    A visit's numbers use the rest still's scale instead (see ``visit``); this own-scale summary
    is what a single still says on its own, stored with its landmarks.
    """
    scale = Scale.from_iris(points)
    return {
        "scale": {"mm_per_px": scale.mm_per_px, "iris_diameter_px": scale.iris_diameter_px, "ipd_px": scale.ipd_px},
        "pose_deg": dict(pose_deg(points)),
        **measure(points, scale.mm_per_px).as_json(),
    }


@dataclass(frozen=True, slots=True)
class StillResult:
    """Detection plus own-scale metrics of one still, and the time both took."""

    detection: Detection
    summary: dict[str, Any] | None
    total_ms: float


def measure_bytes(detector: Detector, data: bytes) -> StillResult:
    """Decode, detect and measure one encoded still."""
    start = time.perf_counter()
    found = detector.detect_bytes(data)
    result = None
    if found.landmarks is not None:
        try:
            result = summary(found.landmarks)
        except ValueError as exc:  # degenerate landmarks (pupils or iris collapsed): flag the still
            found = Detection("error", found.width, found.height, None, found.decode_ms, found.detect_ms, str(exc))
    return StillResult(found, result, (time.perf_counter() - start) * 1000.0)
