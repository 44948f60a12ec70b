"""A typed wrapper around PyAV's VP8 decoder. Blocking: use an executor."""

from __future__ import annotations

import logging
from typing import Any

import av

from .frames import EncodedFrame

__all__ = ["Vp8Decoder"]

logger = logging.getLogger(__name__)


class Vp8Decoder:
    """Decodes a contiguous run of encoded frames; re-synchronizes on the next keyframe."""

    def __init__(self) -> None:
        self._context: Any = av.CodecContext.create("vp8", "r")
        self._synced = False

    def reset(self) -> None:
        """Forget the reference frames: the next frame decoded must be a keyframe."""
        self._synced = False

    def decode(self, frame: EncodedFrame) -> Any | None:
        """Decode one frame; the av.VideoFrame, or None if it cannot be decoded."""
        if not self._synced and not frame.keyframe:
            return None
        try:
            pictures = self._context.decode(av.Packet(frame.data))
        except av.FFmpegError as exc:
            logger.warning("VP8 decode failed, waiting for a keyframe: %s", exc)
            self._synced = False
            return None
        self._synced = True
        return pictures[-1] if pictures else None
