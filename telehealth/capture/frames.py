"""Encoded VP8 frames as received, and the little of the VP8 header we need to read."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["VP8_CLOCK_RATE", "EncodedFrame", "Vp8Header", "parse_vp8_header"]

VP8_CLOCK_RATE = 90_000
_KEYFRAME_START_CODE = b"\x9d\x01\x2a"


@dataclass(frozen=True, slots=True)
class Vp8Header:
    """What a VP8 frame header says: keyframe or not, and a keyframe's picture size."""

    keyframe: bool
    width: int = 0
    height: int = 0


def parse_vp8_header(data: bytes) -> Vp8Header | None:
    """Parse the VP8 frame tag (RFC 6386 section 9.1); None if the frame is malformed."""
    if len(data) < 3:
        return None
    tag = data[0] | (data[1] << 8) | (data[2] << 16)
    keyframe = not tag & 1
    first_partition_size = tag >> 5
    if not keyframe:
        return Vp8Header(keyframe=False) if 3 + first_partition_size <= len(data) else None
    if len(data) < 10 or data[3:6] != _KEYFRAME_START_CODE:
        return None
    # The top two bits of each dimension are an upscaling hint, not part of the size.
    width = (data[6] | (data[7] << 8)) & 0x3FFF
    height = (data[8] | (data[9] << 8)) & 0x3FFF
    if width == 0 or height == 0 or 10 + first_partition_size > len(data):
        return None
    return Vp8Header(keyframe=True, width=width, height=height)


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    """One complete encoded VP8 frame, with its RTP time and its arrival on the server clock."""

    data: bytes
    rtp_timestamp: int  # 90 kHz, unwrapped, 0 at the stream's first frame
    arrival: float  # server monotonic clock, seconds
    keyframe: bool
    width: int  # size of the picture in effect (carried over from the last keyframe)
    height: int

    def __post_init__(self) -> None:
        if not self.data:
            raise ValueError("an encoded frame cannot be empty")
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"invalid frame size {self.width}x{self.height}")

    @property
    def size(self) -> int:
        """Encoded size in bytes."""
        return len(self.data)
