"""Real face stills for analysis tests and the bench: the public-domain NASA astronaut portrait, warped by known fields.

``skimage.data.astronaut()`` (Eileen Collins, NASA, public domain) ships inside scikit-image, so it
works offline. :func:`astronaut_still` frames her face in a 1280x720 still; :func:`warp` moves image
content by a smooth, known displacement field, so the true landmark positions after the warp are
the detected rest landmarks moved by the same field.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image
from skimage import data

SIZE = (1280, 720)
# The face sits around x 179-271, y 71-177 of the 512x512 portrait: a 16:9 crop around it, scaled 4.2x.
CROP = (74, 40, 376, 210)  # left, top, right, bottom


def astronaut_still(size: tuple[int, int] = SIZE) -> np.ndarray:
    """The astronaut's face framed in an RGB still of the given size (uint8, H x W x 3)."""
    left, top, right, bottom = CROP
    crop = np.ascontiguousarray(data.astronaut()[top:bottom, left:right])
    return np.asarray(cv2.resize(crop, size, interpolation=cv2.INTER_CUBIC), dtype=np.uint8)


def png(rgb: np.ndarray) -> bytes:
    """Lossless PNG bytes of an RGB array."""
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="PNG")
    return out.getvalue()


def jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    """JPEG bytes of an RGB array (a lossy re-encoded copy)."""
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="JPEG", quality=quality)
    return out.getvalue()


@dataclass(frozen=True)
class Bump:
    """A smooth local displacement: ``shift`` (px) at ``centre``, fading as an anisotropic Gaussian."""

    centre: tuple[float, float]
    shift: tuple[float, float]
    sigma: tuple[float, float]

    def at(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The displacement (dx, dy) at points x, y."""
        g = np.exp(-(((x - self.centre[0]) / self.sigma[0]) ** 2 + ((y - self.centre[1]) / self.sigma[1]) ** 2) / 2.0)
        return self.shift[0] * g, self.shift[1] * g


def displace(points: np.ndarray, bumps: list[Bump]) -> np.ndarray:
    """Points (n, 2+) moved by the field: the true positions of those features after :func:`warp`."""
    out = np.array(points, dtype=np.float64, copy=True)
    dx = np.zeros(len(out))
    dy = np.zeros(len(out))
    for b in bumps:
        bx, by = b.at(out[:, 0], out[:, 1])
        dx += bx
        dy += by
    out[:, 0] += dx
    out[:, 1] += dy
    return out


def warp(rgb: np.ndarray, bumps: list[Bump]) -> np.ndarray:
    """Move image content by the field: the pixel at p ends up at p + d(p) (inverse map by fixed-point iteration)."""
    h, w = rgb.shape[:2]
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    sx, sy = xs.copy(), ys.copy()
    for _ in range(8):  # solve s + d(s) = x for the source s of each output pixel x
        dx = np.zeros_like(xs)
        dy = np.zeros_like(ys)
        for b in bumps:
            bx, by = b.at(sx, sy)
            dx += bx
            dy += by
        sx, sy = xs - dx, ys - dy
    return np.asarray(
        cv2.remap(rgb, sx.astype(np.float32), sy.astype(np.float32), cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT),
        dtype=np.uint8,
    )
