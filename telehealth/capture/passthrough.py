"""Receive encoded VP8 frames from an aiortc receiver without decoding them.

PRIVATE aiortc API, pinned to aiortc 1.16.0 (pyproject pins it). In that version
``RTCRtpReceiver.receive()`` starts a decoder thread reading ``self.__decoder_queue``
(a ``queue.Queue``); ``_handle_rtp_packet`` puts ``(codec, JitterFrame)`` there on the
event loop for every reassembled frame, and stopping puts ``None``. We swap that queue,
before ``receive()`` runs, for one that hands frames to a sink on the spot and only lets
the ``None`` sentinel through. aiortc's decoder thread then idles until the stop, nothing
is decoded, and the track's queue only ever receives its end marker.
tests/capture/test_passthrough.py fails loudly if an aiortc upgrade changes this.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from typing import Any

import aiortc

__all__ = ["PINNED_AIORTC", "FrameSink", "PassthroughUnsupported", "install_passthrough"]

PINNED_AIORTC = "1.16.0"
_QUEUE_ATTR = "_RTCRtpReceiver__decoder_queue"
_THREAD_ATTR = "_RTCRtpReceiver__decoder_thread"

# (codec name, encoded frame bytes, unwrapped 90 kHz RTP timestamp); runs on the event loop.
FrameSink = Callable[[str, bytes, int], None]


class PassthroughUnsupported(RuntimeError):
    """The installed aiortc does not have the private seam this module relies on."""


class _PassthroughQueue(queue.Queue[Any]):
    def __init__(self, sink: FrameSink) -> None:
        super().__init__()
        self._sink = sink

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if item is None:
            super().put(None, block, timeout)  # lets aiortc's decoder thread end the track
            return
        codec, frame = item
        self._sink(codec.name, frame.data, frame.timestamp)


def install_passthrough(receiver: Any, sink: FrameSink) -> None:
    """Route a not-yet-started receiver's encoded frames to ``sink`` instead of its decoder."""
    if aiortc.__version__ != PINNED_AIORTC:
        raise PassthroughUnsupported(
            f"aiortc {aiortc.__version__} installed; the passthrough is pinned to {PINNED_AIORTC}"
        )
    current = getattr(receiver, _QUEUE_ATTR, None)
    if type(current) is not queue.Queue or not hasattr(receiver, _THREAD_ATTR):
        raise PassthroughUnsupported("RTCRtpReceiver no longer has the expected decoder queue")
    if getattr(receiver, _THREAD_ATTR) is not None:
        raise PassthroughUnsupported("the receiver has already started decoding")
    setattr(receiver, _QUEUE_ATTR, _PassthroughQueue(sink))
