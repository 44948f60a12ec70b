"""Real VP8 frames encoded with PyAV's libvpx, for unit tests that need no network."""

from __future__ import annotations

from fractions import Fraction

import av
from PIL import Image

from telehealth.capture.frames import EncodedFrame, parse_vp8_header


def encode(
    images: list[Image.Image], start: float = 100.0, fps: int = 30, rtp_origin: int = 0, gop: int = 1000
) -> list[EncodedFrame]:
    """Encode same-size images as one VP8 stream (keyframe first), arriving at ``fps``."""
    width, height = images[0].size
    context = av.CodecContext.create("libvpx", "w")
    context.width, context.height, context.pix_fmt = width, height, "yuv420p"
    context.time_base = Fraction(1, fps)
    context.bit_rate = 2_000_000
    context.gop_size = gop
    context.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    packets = []
    for i, image in enumerate(images):
        frame = av.VideoFrame.from_image(image)
        frame.pts = i
        packets.extend(bytes(p) for p in context.encode(frame))
    packets.extend(bytes(p) for p in context.encode(None))
    out = []
    for i, data in enumerate(packets):
        header = parse_vp8_header(data)
        assert header is not None
        out.append(EncodedFrame(data, rtp_origin + i * 90_000 // fps, start + i / fps, header.keyframe, width, height))
    return out
