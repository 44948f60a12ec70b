"""The face frame (roll-corrected axes through the pupils) and the iris scale."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

from telehealth.analysis.indices import IRIS_RING, N_LANDMARKS, PUPIL

Points = NDArray[np.float64]
"""Landmarks in image pixels, shape (478, 2) or (478, 3) (x right, y down, z depth in x's units)."""

IRIS_DIAMETER_MM: Final = 11.77  # mean horizontal visible iris diameter of adults (as in Emotrics)


def check_points(points: Points) -> Points:
    """The x, y columns of a full landmark set as float64; ValueError on a wrong shape or non-finite values."""
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] != N_LANDMARKS or arr.shape[1] not in (2, 3):
        raise ValueError(f"expected ({N_LANDMARKS}, 2|3) landmarks, got {arr.shape}")
    xy = arr[:, :2]
    if not np.isfinite(xy).all():
        raise ValueError("landmarks contain non-finite coordinates")
    return xy


@dataclass(frozen=True, slots=True)
class FaceFrame:
    """Axes of the face: u from the subject's right pupil to the left one, v down the face, origin mid-pupil."""

    origin: Points
    u: Points
    v: Points
    ipd_px: float

    @classmethod
    def of(cls, points: Points) -> FaceFrame:
        """The frame of a landmark set; ValueError when the pupils coincide."""
        xy = check_points(points)
        right, left = xy[PUPIL["right"]], xy[PUPIL["left"]]
        d = left - right
        ipd = float(np.hypot(d[0], d[1]))
        if ipd < 1e-6:
            raise ValueError("pupils coincide: no face frame")
        u = d / ipd
        # Image y points down, so turning u by +90 degrees (x, y) -> (-y, x) points down the face.
        v = np.array([-u[1], u[0]])
        return cls(origin=(right + left) / 2.0, u=u, v=v, ipd_px=ipd)

    def project(self, points: Points) -> Points:
        """Image points (..., 2+) to face-frame coordinates (..., 2) in pixels: columns u, v."""
        rel = np.asarray(points, dtype=np.float64)[..., :2] - self.origin
        return np.stack([rel @ self.u, rel @ self.v], axis=-1)

    @property
    def roll_deg(self) -> float:
        """Head roll: positive when the subject's left pupil is lower in the image than the right one."""
        return math.degrees(math.atan2(float(self.u[1]), float(self.u[0])))


def iris_diameter_px(points: Points) -> float:
    """Mean iris diameter in pixels: per eye the mean of its horizontal and vertical ring diameters, then both eyes."""
    xy = check_points(points)
    per_eye = []
    for (h0, h1), (v0, v1) in IRIS_RING.values():
        horizontal = float(np.linalg.norm(xy[h0] - xy[h1]))
        vertical = float(np.linalg.norm(xy[v0] - xy[v1]))
        per_eye.append((horizontal + vertical) / 2.0)
    diameter = sum(per_eye) / len(per_eye)
    if diameter < 1e-6:
        raise ValueError("iris ring collapsed: no scale")
    return diameter


@dataclass(frozen=True, slots=True)
class Scale:
    """Millimetres per pixel of one still, with the image measures it came from."""

    mm_per_px: float
    iris_diameter_px: float
    ipd_px: float

    @classmethod
    def from_iris(cls, points: Points) -> Scale:
        """The still's own scale: 11.77 mm over its mean iris diameter."""
        diameter = iris_diameter_px(points)
        return cls(IRIS_DIAMETER_MM / diameter, diameter, FaceFrame.of(points).ipd_px)

    def carried_to(self, points: Points) -> Scale:
        """This (rest) scale carried to another still of the visit by the ratio of inter-pupil distances.

        The iris is hidden when the eyes close, but the pupils' distance in millimetres does not
        change, so the rest scale corrected for the change of distance to the camera stays valid.
        """
        ipd = FaceFrame.of(points).ipd_px
        return Scale(self.mm_per_px * self.ipd_px / ipd, self.iris_diameter_px * ipd / self.ipd_px, ipd)
