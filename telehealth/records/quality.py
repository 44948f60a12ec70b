"""The capture quality record: one typed, versioned model, written by capture and read by review.

Stored as JSON in ``captures.quality``. Version 2 lists every problem in ``flags`` (a clip's
resolution change included); version 1 rows are read too. Readers use ``flags`` only: a check
that passed is never a flag.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

__all__ = ["QUALITY_VERSION", "CaptureQuality", "CopyQuality", "StillSelection", "read_quality"]

log = logging.getLogger(__name__)

QUALITY_VERSION = 2


class StillSelection(BaseModel):
    """How the still was picked from its window (stream stills only)."""

    model_config = ConfigDict(frozen=True)

    rule: str
    expression: float
    sharpness: float
    sharpness_threshold: float
    candidates: int


class CopyQuality(BaseModel):
    """Figures and flags of one copy of a take (the stream's or the patient device's)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    version: int = QUALITY_VERSION
    source: Literal["stream", "device"]
    flags: list[str] = []
    width: int | None = None
    height: int | None = None
    # Stills: picture-level checks (capture/quality.py); "not_run" names checks nobody ran.
    brightness: float | None = None
    brightness_image_left: float | None = None
    brightness_image_right: float | None = None
    side_imbalance: float | None = None
    clipped_fraction: float | None = None
    ok: bool | None = None
    not_run: list[str] = []
    selection: StillSelection | None = None
    # Stream clips.
    preroll_seconds: float | None = None
    postroll_seconds: float | None = None
    resolution_changed: bool | None = None
    # Why the stream gave no copy.
    error: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _upgrade(cls, data: Any) -> Any:
        """Version 1 clips kept ``resolution_changed`` outside ``flags``: only a true value is a flag."""
        if isinstance(data, dict) and data.get("version", 1) < 2:
            flags = list(data.get("flags") or [])
            if data.get("resolution_changed") is True and "resolution_changed" not in flags:
                flags.append("resolution_changed")
            data = {**data, "flags": flags, "version": QUALITY_VERSION}
        return data


class CaptureQuality(CopyQuality):
    """The quality of a take's primary copy; ``stream`` keeps the stream copy's when the device's is primary."""

    stream: CopyQuality | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON stored in ``captures.quality``."""
        return self.model_dump(mode="json", exclude_none=True)


def read_quality(raw: dict[str, Any] | None) -> CaptureQuality | None:
    """The stored quality of a take, or None when there is none (or it cannot be read)."""
    if not raw:
        return None
    try:
        return CaptureQuality.model_validate(raw)
    except ValidationError as exc:
        log.warning("unreadable capture quality record ignored: %s", exc.errors()[:1])
        return None
