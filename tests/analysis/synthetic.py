"""Hand-made landmark sets with known geometry in millimetres (for the pure measurement tests)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from telehealth.analysis import indices as ix

IRIS_R = 11.77 / 2


@dataclass(frozen=True)
class Face:
    """A face described in the face frame (mm, v down, origin mid-pupil); right is the subject's right (u < 0)."""

    brow: tuple[float, float] = (20.0, 20.0)  # brow height right, left
    mrd1: tuple[float, float] = (4.0, 4.0)
    mrd2: tuple[float, float] = (5.0, 5.0)
    corner_rise: tuple[float, float] = (10.0, 10.0)  # corner above the lower-lip midline point
    corner_u: tuple[float, float] = (25.0, 25.0)  # distance of each corner from the midline
    lip_mid_v: float = 80.0
    iris_vertical_ratio: float = 1.0  # MediaPipe's vertical ring reads short; 0 = closed eye (ring collapsed)
    ipd: float = 62.0

    def uv(self) -> dict[int, tuple[float, float]]:
        """Landmark index -> (u, v) in mm."""
        pts: dict[int, tuple[float, float]] = {}
        for k, side in enumerate(("right", "left")):
            sign = -1.0 if side == "right" else 1.0
            pu = sign * self.ipd / 2
            pts[ix.PUPIL[side]] = (pu, 0.0)
            (h0, h1), (v0, v1) = ix.IRIS_RING[side]
            rv = IRIS_R * self.iris_vertical_ratio
            pts[h0], pts[h1] = (pu - IRIS_R, 0.0), (pu + IRIS_R, 0.0)
            pts[v0], pts[v1] = (pu, -rv), (pu, rv)
            # Brow: a sloped line (lateral end lower), so the reading must interpolate at u(pupil).
            for i, idx in enumerate(ix.BROW_UPPER[side]):
                du = (-20.0 + 8.0 * i) * -sign  # from lateral to medial
                pts[idx] = (pu + du, -self.brow[k] + 0.1 * du * -sign)
            # Lids: parabolas whose middle point sits exactly above/below the pupil.
            for i, idx in enumerate(ix.LID_UPPER[side]):
                du = (-15.0 + 5.0 * i) * -sign
                pts[idx] = (pu + du, -self.mrd1[k] + 0.01 * du * du)
            for i, idx in enumerate(ix.LID_LOWER[side]):
                du = (-15.0 + 5.0 * i) * -sign
                pts[idx] = (pu + du, self.mrd2[k] - 0.01 * du * du)
            pts[ix.EYE_OUTER[side]] = (sign * 45.0, 0.0)
        # Lower outer lip: straight from each corner to the midline point (index 17 at u = 0).
        corners = {
            "right": (-self.corner_u[0], self.lip_mid_v - self.corner_rise[0]),
            "left": (self.corner_u[1], self.lip_mid_v - self.corner_rise[1]),
        }
        lip = ix.LIP_LOWER_OUTER
        for i, idx in enumerate(lip):
            t = (i - 5) / 5  # -1 at the right corner, 0 at 17, +1 at the left corner
            cu, cv = corners["right"] if t < 0 else corners["left"]
            pts[idx] = (abs(t) * cu, self.lip_mid_v + abs(t) * (cv - self.lip_mid_v))
        # Inner lips: a mouth opening 4 mm high between u = -16 and 16, closing at u = +-20.
        for contour, v in ((ix.LIP_UPPER_INNER, 74.0), (ix.LIP_LOWER_INNER, 78.0)):
            for i, idx in enumerate(contour):
                u = -20.0 + 4.0 * i
                pts[idx] = (u, 76.0 if abs(u) == 20.0 else v)
        pts[ix.FOREHEAD] = (0.0, -80.0)
        pts[ix.CHIN] = (0.0, 120.0)
        return pts

    def image(
        self, px_per_mm: float = 5.0, roll_deg: float = 0.0, origin: tuple[float, float] = (640.0, 300.0)
    ) -> np.ndarray:
        """A (478, 3) landmark array in image pixels: scaled, rolled and placed; unused points at the origin."""
        c, s = math.cos(math.radians(roll_deg)), math.sin(math.radians(roll_deg))
        out = np.zeros((ix.N_LANDMARKS, 3))
        out[:, 0], out[:, 1] = origin
        for idx, (u, v) in self.uv().items():
            x, y = u * px_per_mm, v * px_per_mm
            out[idx, 0] = origin[0] + c * x - s * y
            out[idx, 1] = origin[1] + s * x + c * y
        return out


def mirrored(points: np.ndarray, width: float = 1280.0) -> np.ndarray:
    """What the detector reports for a mirrored photo: x flipped, and each point labelled as its counterpart."""
    out = points.copy()
    out[:, 0] = width - out[:, 0]
    swapped = out.copy()
    for i, j in ix.MIRROR_PAIRS.items():
        swapped[i] = out[j]
    return swapped
