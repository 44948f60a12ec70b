"""Capture state changes as events: the seam the clinician's live panel (and anything else) listens on."""

from __future__ import annotations

import logging
import uuid
from enum import StrEnum
from typing import Protocol

__all__ = ["CaptureChange", "CaptureListener", "FanOutListener", "NoCaptureListener", "notify"]

log = logging.getLogger(__name__)


class CaptureChange(StrEnum):
    """Why a visit's capture changed: the ``reason`` passed to :meth:`CaptureListener.capture_changed`."""

    STARTED = "started"  # capture started (or restarted) with a protocol
    TAKE = "take"  # a take: its still stored (or pending), its clip pending
    SKIP = "skip"  # a step skipped, with a reason
    CLIP_STORED = "clip_stored"  # the stream clip of a take was stored
    CLIP_FAILED = "clip_failed"  # the stream had no usable clip for a take
    UPLOAD_STORED = "upload_stored"  # the patient's device copy of a take was stored
    DEVICE_COPY_MISSING = "device_copy_missing"  # a take's device copy did not arrive in time
    PEER_STATE = "peer_state"  # the patient's capture peer connected, started receiving, or closed


class CaptureListener(Protocol):
    """Told whenever a visit's capture changed; set one on the app as ``app[CAPTURE_LISTENER]``.

    Contract:
    - ``capture_changed(visit_id, reason)`` is awaited AFTER the change is committed, so reading
      the visit's capture (e.g. ``GET /api/visits/{id}/capture``) then shows it. ``reason`` is a
      :class:`CaptureChange` value (a ``str``; new reasons may be added: treat unknown ones as
      "something changed").
    - It is called once per take, skip, stored clip, failed clip, stored device upload, device
      copy marked missing, and peer state change, from the task that made the change (a request
      handler, a clip task, or the peer's state callback), in the process that made it.
    - It must return promptly (enqueue work; no slow network I/O inline) and must not raise: an
      exception is logged and dropped, it never undoes or fails the capture operation.
    - The capture handlers look ``app[CAPTURE_LISTENER]`` up at each event, so a listener may be
      installed by any ``cleanup_ctx`` entry during startup; the default does nothing.
    """

    async def capture_changed(self, visit_id: uuid.UUID, reason: str) -> None:
        """The capture of ``visit_id`` changed for ``reason`` (a :class:`CaptureChange` value)."""


class NoCaptureListener:
    """The default listener: nobody is told."""

    async def capture_changed(self, visit_id: uuid.UUID, reason: str) -> None:
        """Ignore the change."""


class FanOutListener:
    """Tells several listeners in turn; one that fails does not keep the others from hearing."""

    def __init__(self, *listeners: CaptureListener) -> None:
        self._listeners = listeners

    async def capture_changed(self, visit_id: uuid.UUID, reason: str) -> None:
        """Pass the change to every listener."""
        for listener in self._listeners:
            try:
                await listener.capture_changed(visit_id, reason)
            except Exception:
                log.exception("capture listener %r failed on visit %s (%s)", listener, visit_id, reason)


async def notify(listener: CaptureListener, visit_id: uuid.UUID, reason: CaptureChange) -> None:
    """Tell the listener; its failure is logged, never raised into the capture operation."""
    try:
        await listener.capture_changed(visit_id, reason)
    except Exception:
        log.exception("capture listener failed on visit %s (%s)", visit_id, reason.value)
