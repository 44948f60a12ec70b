"""Answer-SDP munging that makes Chromium send at clinical resolution."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["BitrateHint", "add_bitrate_hint"]

_RTPMAP_RE = re.compile(r"^a=rtpmap:(\d+) VP8/90000$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class BitrateHint:
    """Chromium's x-google bitrate fmtp parameters, in kbit/s."""

    start_kbps: int = 2500
    min_kbps: int = 1500
    max_kbps: int = 4000

    def __post_init__(self) -> None:
        if not 0 < self.min_kbps <= self.start_kbps <= self.max_kbps:
            raise ValueError(f"need 0 < min <= start <= max kbit/s, got {self}")

    def fmtp(self) -> str:
        """The fmtp parameter string."""
        return (
            f"x-google-start-bitrate={self.start_kbps};x-google-min-bitrate={self.min_kbps};"
            f"x-google-max-bitrate={self.max_kbps}"
        )


def add_bitrate_hint(sdp: str, hint: BitrateHint | None = None) -> str:
    """Add the bitrate hint to every VP8 payload type of the SDP's video sections.

    aiortc only sends REMB, so without this Chromium ramps slowly and a 1280x720
    camera arrives as 960x540 (webrtc-notes.md).
    """
    params = (hint or BitrateHint()).fmtp()
    eol = "\r\n" if "\r\n" in sdp else "\n"
    out: list[str] = []
    lines = sdp.split(eol)
    in_video = False
    pending: list[str] = []  # VP8 payload types of this section still lacking an fmtp
    for line in lines:
        if line.startswith("m="):
            out.extend(f"a=fmtp:{pt} {params}" for pt in pending)
            pending = []
            in_video = line.startswith("m=video")
        elif in_video and (match := _RTPMAP_RE.match(line)):
            pending.append(match.group(1))
        elif in_video and line.startswith("a=fmtp:"):
            pt, _, existing = line[len("a=fmtp:") :].partition(" ")
            if pt in pending:
                pending.remove(pt)
                line = f"a=fmtp:{pt} {existing};{params}" if existing else f"a=fmtp:{pt} {params}"
        out.append(line)
    if pending:
        # The last section ends the SDP: insert before the trailing empty line, if any.
        tail = [out.pop()] if out and out[-1] == "" else []
        out.extend(f"a=fmtp:{pt} {params}" for pt in pending)
        out.extend(tail)
    return eol.join(out)
