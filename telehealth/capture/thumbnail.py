"""Small JPEG previews of stills. Blocking: use an executor."""

from __future__ import annotations

import io

from PIL import Image, ImageOps

__all__ = ["THUMBNAIL_WIDTH", "make_thumbnail", "thumbnail_of"]

THUMBNAIL_WIDTH = 320
MAX_SOURCE_PIXELS = 64_000_000  # far above any phone camera; refuses decompression bombs


def thumbnail_of(image: Image.Image, width: int = THUMBNAIL_WIDTH) -> bytes:
    """JPEG thumbnail ``width`` px wide (never upscaled) of an already decoded image."""
    small = image.convert("RGB")
    if small.width > width:
        small = small.resize(
            (width, max(1, round(small.height * width / small.width))), Image.Resampling.BILINEAR, reducing_gap=2.0
        )
    out = io.BytesIO()
    small.save(out, "JPEG", quality=85)
    return out.getvalue()


def make_thumbnail(image_bytes: bytes, width: int = THUMBNAIL_WIDTH) -> bytes:
    """JPEG thumbnail ``width`` px wide of a PNG/JPEG/WebP image, upright as a viewer shows it."""
    with Image.open(io.BytesIO(image_bytes)) as image:
        if image.width * image.height > MAX_SOURCE_PIXELS:
            raise ValueError(f"image too large for a thumbnail: {image.width}x{image.height}")
        # JPEG can decode at 1/2..1/8 scale directly: much faster for camera photos. Square
        # request: both sides stay >= width whichever way EXIF turns the picture.
        image.draft("RGB", (width, width))
        # EXIF orientation is how every viewer shows a device photo; apply it, add no flip.
        upright = ImageOps.exif_transpose(image)
        return thumbnail_of(upright, width)
