"""Capture changes -> `capture_changed` pushes to the visit's clinicians, without polling.

The capture handlers call `capture_changed(visit_id, reason)` after each committed change, from a
request handler, a clip task or a peer callback; they must not wait on Redis. So this listener only
records the visit in a bounded, coalescing set, and one owned task does the publishing: a burst of
changes to one visit (a take, its thumbnail, its clip) becomes one push when the task is busy.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable

from telehealth.signaling.broker import BrokerUnavailable
from telehealth.signaling.hub import Hub

log = logging.getLogger(__name__)

MAX_PENDING_VISITS = 1024


class CaptureFeed:
    """A `CaptureListener` that pushes each visit's capture changes over the signaling hub."""

    def __init__(self, hub: Callable[[], Hub], *, max_pending: int = MAX_PENDING_VISITS) -> None:
        # A getter: the feed is the app's listener from the start, the hub exists once it started.
        self._hub = hub
        self._max_pending = max_pending
        # visit id -> latest reason; insertion order is the order the visits are pushed in.
        self._pending: dict[str, str] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    async def capture_changed(self, visit_id: uuid.UUID, reason: str) -> None:
        """Queue a push for the visit; never blocks, never raises."""
        if self._closed:
            return  # shutting down: the sockets are closing too
        key = str(visit_id)
        if key not in self._pending and len(self._pending) >= self._max_pending:
            log.warning("[visit=%s] capture push dropped (%s): %d visits queued", key, reason, len(self._pending))
            return
        self._pending[key] = reason
        self._wake.set()

    def start(self) -> None:
        """Start the publishing task."""
        self._task = asyncio.create_task(self._run(), name="capture-feed")

    async def close(self) -> None:
        """Stop the publishing task; changes queued but not yet pushed are dropped."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self._pending.clear()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                visit_id = next(iter(self._pending))
                reason = self._pending.pop(visit_id)
                try:
                    await self._hub().capture_changed(visit_id, reason)
                except BrokerUnavailable:
                    # Clinicians on this process were told; others refresh when their socket
                    # reconnects (the panel reads the capture once on every join).
                    log.warning("[visit=%s] capture push not published: broker unavailable", visit_id)
                except Exception:
                    log.exception("[visit=%s] capture push failed", visit_id)
