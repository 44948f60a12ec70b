"""Server-side media core of standardized facial-expression capture.

Receives the patient's camera over WebRTC without decoding it, keeps a bounded ring of
the encoded stream, and turns a protocol step's time window into a still (best frame)
and a pre-rolled WebM clip. Knows nothing of the database or HTTP.
"""

from .protocol import (
    CaptureProtocol,
    InvalidProtocolError,
    ProtocolStep,
    StillRule,
    default_protocol,
    load_protocol,
    parse_protocol,
    shipped_protocols,
)
from .result import CaptureUnavailable, Clip, StillImage, StillScores, StreamCaptureResult
from .sdp import BitrateHint
from .serverpeer import PeerSettings, PeerState, PeerStateError, PeerStats, ServerCapturePeer
from .thumbnail import make_thumbnail

__all__ = [
    "BitrateHint",
    "CaptureProtocol",
    "CaptureUnavailable",
    "Clip",
    "InvalidProtocolError",
    "PeerSettings",
    "PeerState",
    "PeerStateError",
    "PeerStats",
    "ProtocolStep",
    "ServerCapturePeer",
    "StillImage",
    "StillRule",
    "StillScores",
    "StreamCaptureResult",
    "default_protocol",
    "load_protocol",
    "make_thumbnail",
    "parse_protocol",
    "shipped_protocols",
]
