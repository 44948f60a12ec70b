"""A fake camera for Chromium: an asymmetric synthetic face written as a looping .y4m file.

The picture is deliberately asymmetric (a bright square in the camera's LEFT half of the frame)
so that a mirrored still can be detected, and the "mouth" widens and narrows over the loop so
that there is a peak expression for still selection to find.
"""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw

MARKER_BOX = (0.06, 0.08, 0.20, 0.30)  # fractions of width/height: left, top, right, bottom


def face_frame(width: int, height: int, phase: float) -> Image.Image:
    """One frame; phase in [0, 1) drives the expression (0 = rest, 0.5 = peak)."""
    img = Image.new("RGB", (width, height), (70, 90, 110))
    d = ImageDraw.Draw(img)
    cx, cy = width / 2, height / 2
    fw, fh = width * 0.22, height * 0.38
    d.ellipse((cx - fw, cy - fh, cx + fw, cy + fh), fill=(224, 182, 150))
    for side in (-1, 1):
        ex = cx + side * fw * 0.42
        d.ellipse((ex - fw * 0.16, cy - fh * 0.28, ex + fw * 0.16, cy - fh * 0.12), fill=(255, 255, 255))
        d.ellipse((ex - fw * 0.07, cy - fh * 0.25, ex + fw * 0.07, cy - fh * 0.15), fill=(60, 40, 30))
    smile = 0.5 - 0.5 * math.cos(2 * math.pi * phase)  # 0 at rest, 1 at the peak
    mw = fw * (0.35 + 0.3 * smile)
    mh = fh * (0.05 + 0.12 * smile)
    d.ellipse((cx - mw, cy + fh * 0.45 - mh, cx + mw, cy + fh * 0.45 + mh), fill=(150, 40, 50))
    x0, t, r, b = MARKER_BOX
    d.rectangle((width * x0, height * t, width * r, height * b), fill=(255, 255, 255))
    return img


def write_y4m(path: Path, width: int = 1280, height: int = 720, fps: int = 30, seconds: float = 2.0) -> Path:
    """Write the looping fake-camera file (YUV 4:2:0) and return its path."""
    frames = int(fps * seconds)
    with path.open("wb") as f:
        f.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for i in range(frames):
            ycc = face_frame(width, height, i / frames).convert("YCbCr")
            y, cb, cr = ycc.split()
            half = (width // 2, height // 2)
            f.write(b"FRAME\n")
            f.write(y.tobytes())
            f.write(cb.resize(half, Image.Resampling.BILINEAR).tobytes())
            f.write(cr.resize(half, Image.Resampling.BILINEAR).tobytes())
    return path


def marker_is_on_left(img: Image.Image) -> bool:
    """True when the bright marker sits in the image's left half (i.e. the image is not mirrored)."""
    w, h = img.size
    gray = img.convert("L")
    x0, t, r, b = MARKER_BOX
    left = gray.crop((int(w * x0), int(h * t), int(w * r), int(h * b)))
    right = gray.crop((int(w * (1 - r)), int(h * t), int(w * (1 - x0)), int(h * b)))

    def mean(im: Image.Image) -> float:
        hist = im.histogram()
        return sum(i * n for i, n in enumerate(hist)) / max(1, sum(hist))

    return mean(left) > 200 and mean(right) < 150
