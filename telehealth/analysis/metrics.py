"""Emotrics-style measurements of one still, per side of the subject's face, from its landmarks.

All lengths are in millimetres (areas in mm^2, angles in degrees), measured in the face frame
(:class:`~telehealth.analysis.frame.FaceFrame`), so head roll does not change them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Literal, TypedDict

import numpy as np

from telehealth.analysis.frame import FaceFrame, Points, check_points
from telehealth.analysis.indices import (
    BROW_UPPER,
    CHIN,
    EYE_OUTER,
    FOREHEAD,
    LID_LOWER,
    LID_UPPER,
    LIP_LOWER_INNER,
    LIP_LOWER_OUTER,
    LIP_UPPER_INNER,
    MOUTH_CORNER,
    PUPIL,
)

Side = Literal["right", "left"]
SIDES: Final[tuple[Side, Side]] = ("right", "left")

METRIC_UNITS: Final = {
    "brow_height": "mm",
    "mrd1": "mm",
    "mrd2": "mm",
    "palpebral_fissure_height": "mm",
    "commissure_excursion": "mm",
    "smile_angle": "deg",
    "commissure_height": "mm",
    "lower_lip_height": "mm",
    "dental_show": "mm2",
}
"""Every per-side metric and its unit, in display order."""


class SideValues(TypedDict):
    """One value per side of the subject's face."""

    right: float
    left: float


@dataclass(frozen=True, slots=True)
class StillMetrics:
    """The measurements of one still: per-side metrics and the single midline values."""

    sides: dict[str, SideValues]
    commissure_height_difference: float

    def as_json(self) -> dict[str, object]:
        """Plain JSON-ready form."""
        return {
            "metrics": {name: dict(values) for name, values in self.sides.items()},
            "midline": {"commissure_height_difference": self.commissure_height_difference},
        }


def _v_at(uv: Points, u0: float) -> float:
    """v of a contour (face-frame points) at u = u0, linearly interpolated (clamped at the contour's ends)."""
    order = np.argsort(uv[:, 0], kind="stable")
    return float(np.interp(u0, uv[order, 0], uv[order, 1]))


def _shoelace(poly: Points) -> float:
    """Area of a simple polygon (absolute value)."""
    if len(poly) < 3:
        return 0.0
    x, y = poly[:, 0], poly[:, 1]
    return abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))) / 2.0


def _clip_half(poly: Points, sign: float) -> Points:
    """The part of a polygon where sign * u >= 0 (Sutherland-Hodgman against the midline)."""
    out: list[Points] = []
    n = len(poly)
    for i in range(n):
        cur, nxt = poly[i], poly[(i + 1) % n]
        cur_in, nxt_in = sign * cur[0] >= 0, sign * nxt[0] >= 0
        if cur_in:
            out.append(cur)
        if cur_in != nxt_in:
            t = cur[0] / (cur[0] - nxt[0])
            out.append(cur + t * (nxt - cur))
    return np.array(out) if out else np.zeros((0, 2))


def measure(points: Points, mm_per_px: float) -> StillMetrics:
    """All metrics of one still from its landmarks (image pixels) at the given scale."""
    if not mm_per_px > 0:
        raise ValueError("mm_per_px must be positive")
    xy = check_points(points)
    frame = FaceFrame.of(xy)
    uv = frame.project(xy) * mm_per_px

    def contour(indices: tuple[int, ...]) -> Points:
        return uv[list(indices)]

    lip = contour(LIP_LOWER_OUTER)
    lip_mid_v = _v_at(lip, 0.0)
    lip_mid = np.array([0.0, lip_mid_v])
    mouth = np.vstack([contour(LIP_UPPER_INNER), contour(tuple(reversed(LIP_LOWER_INNER)))])
    out: dict[str, dict[str, float]] = {name: {} for name in METRIC_UNITS}
    for side in SIDES:
        pupil = uv[PUPIL[side]]
        pu, pv = float(pupil[0]), float(pupil[1])
        upper_lid = _v_at(contour(LID_UPPER[side]), pu)
        lower_lid = _v_at(contour(LID_LOWER[side]), pu)
        corner = uv[MOUTH_CORNER[side]]
        excursion = float(np.linalg.norm(corner - lip_mid))
        rise = lip_mid_v - float(corner[1])  # v points down: a corner above the midline point has smaller v
        out["brow_height"][side] = pv - _v_at(contour(BROW_UPPER[side]), pu)
        out["mrd1"][side] = pv - upper_lid
        out["mrd2"][side] = lower_lid - pv
        out["palpebral_fissure_height"][side] = lower_lid - upper_lid
        out["commissure_excursion"][side] = excursion
        ratio = max(-1.0, min(1.0, rise / excursion)) if excursion > 0 else 0.0
        out["smile_angle"][side] = 90.0 + math.degrees(math.asin(ratio))
        # Both referenced to nearby points, not to the pupils 60-80 mm away: the iris scale's noise
        # (about 1 %) would otherwise swamp the millimetre changes these are read for.
        out["commissure_height"][side] = rise
        out["lower_lip_height"][side] = _v_at(lip, float(corner[0]) / 2.0) - float(corner[1])
        out["dental_show"][side] = _shoelace(_clip_half(mouth, -1.0 if side == "right" else 1.0))
    sides = {name: SideValues(right=vals["right"], left=vals["left"]) for name, vals in out.items()}
    difference = sides["commissure_height"]["right"] - sides["commissure_height"]["left"]
    return StillMetrics(sides=sides, commissure_height_difference=difference)


class Pose(TypedDict):
    """Approximate head pose in degrees."""

    yaw: float
    pitch: float
    roll: float


def pose_deg(points: Points) -> Pose:
    """Approximate head pose from the landmarks' depth (needs the z column; 0 where absent).

    yaw > 0: turned towards the subject's left (the left eye farther away); pitch > 0: chin up
    (the forehead farther away than the chin); roll > 0: the subject's left pupil lower in the image.
    MediaPipe's depth is relative and coarse: good for flagging a turned head, not for measuring it.
    """
    arr = np.asarray(points, dtype=np.float64)
    xyz = arr if arr.shape[1] == 3 else np.hstack([arr, np.zeros((len(arr), 1))])
    eyes = xyz[EYE_OUTER["left"]] - xyz[EYE_OUTER["right"]]
    face = xyz[CHIN] - xyz[FOREHEAD]
    yaw = math.degrees(math.atan2(float(eyes[2]), float(np.hypot(eyes[0], eyes[1]))))
    pitch = math.degrees(math.atan2(float(-face[2]), float(np.hypot(face[0], face[1]))))
    return Pose(yaw=yaw, pitch=pitch, roll=FaceFrame.of(arr).roll_deg)
