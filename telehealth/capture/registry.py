"""The peer registry: which visit's capture runner (and patient peer) lives in this process.

A runner is registered when the patient's offer is answered and dropped as soon as its peer
closes (patient gone, connection failed, no media, replaced, shutdown), so the registry holds
only live peers. Deployment: a visit's peer lives in the process that answered its offer; see
``telehealth.handlers.capture.takes`` for how other processes recognise that.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from aiortc import RTCIceServer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from telehealth import metrics
from telehealth.records.mediastore import MediaStore

from .runner import CaptureRunner
from .serverpeer import PeerSettings, PeerState, ServerCapturePeer

__all__ = ["BadOffer", "PeerEvent", "PeerRegistry", "RegistryClosed"]

log = logging.getLogger(__name__)

# What the registry reports about a visit: "peer_state" or "clip_stored" / "clip_failed".
PeerEvent = Callable[[uuid.UUID, str], Awaitable[None]]


class RegistryClosed(RuntimeError):
    """The process is shutting down: no new peers."""


class BadOffer(ValueError):
    """The patient's SDP offer could not be answered."""


async def _nobody(visit_id: uuid.UUID, what: str) -> None:
    """The default event sink."""


class PeerRegistry:
    """visit id -> this process's CaptureRunner; owns the peers, their executor and their tasks."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        store: MediaStore,
        *,
        peer_settings: PeerSettings | None = None,
        on_event: PeerEvent = _nobody,
    ) -> None:
        self.instance = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"  # this process, as the visit records it
        self._sessionmaker = sessionmaker
        self._store = store
        self._peer_settings = peer_settings or PeerSettings()
        self._on_event = on_event
        # Shared by every peer: decoding, remuxing, encoding of stills and clips.
        self.executor = ThreadPoolExecutor(max(2, os.cpu_count() or 2), thread_name_prefix="capture")
        self._runners: dict[uuid.UUID, CaptureRunner] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    def get(self, visit_id: uuid.UUID) -> CaptureRunner | None:
        """This process's runner of the visit, if its peer is open."""
        return self._runners.get(visit_id)

    def __len__(self) -> int:
        return len(self._runners)

    async def connect(self, visit_id: uuid.UUID, offer_sdp: str, ice_servers: Sequence[RTCIceServer]) -> str:
        """Answer the patient's offer with a new peer, replacing (and closing) the visit's old one."""
        if self._closed:
            raise RegistryClosed("the server is shutting down")
        holder: list[CaptureRunner] = []  # the runner, once made: the peer's callback needs it
        peer = ServerCapturePeer(
            ice_servers,
            settings=self._peer_settings,
            executor=self.executor,
            on_state=lambda state: self._moved(visit_id, holder, state),
        )

        async def on_clip(stored: bool) -> None:
            await self._on_event(visit_id, "clip_stored" if stored else "clip_failed")

        runner = CaptureRunner(
            visit_id, peer, sessionmaker=self._sessionmaker, store=self._store, executor=self.executor, on_clip=on_clip
        )
        holder.append(runner)
        try:
            answer = await runner.answer(offer_sdp)
        except Exception as exc:  # aiortc's SDP parser raises many kinds on malformed input
            await peer.close()
            log.info("visit %s: unusable offer: %r", visit_id, exc)
            raise BadOffer("the SDP offer could not be used (it needs a VP8 video m-line)") from exc
        old = self._runners.get(visit_id)
        self._runners[visit_id] = runner
        metrics.set_capture_peers(len(self._runners))
        if old is not None:
            # The replaced runner may still be cutting a clip; the new peer must not wait for it.
            self._spawn(old.close())
        return answer

    def _moved(self, visit_id: uuid.UUID, holder: list[CaptureRunner], state: PeerState) -> None:
        """The peer's state callback (synchronous): drop a closed peer, report every move."""
        if state is PeerState.CLOSED and holder and self._runners.get(visit_id) is holder[0]:
            del self._runners[visit_id]
            metrics.set_capture_peers(len(self._runners))
            log.info("visit %s: capture peer closed, runner dropped (%d left)", visit_id, len(self._runners))
            # Its clip tasks still get their grace period; close() is idempotent.
            self._spawn(holder[0].close())
        self._spawn(self._on_event(visit_id, "peer_state"))

    def _spawn(self, coro: Awaitable[None]) -> None:
        async def run() -> None:
            await coro

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Close every peer (after its clip tasks), wait for the tasks, stop the executor."""
        self._closed = True
        runners = list(self._runners.values())
        await asyncio.gather(*(r.close() for r in runners), return_exceptions=True)
        while self._tasks:  # closing peers spawn their last events
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._runners.clear()
        self.executor.shutdown(wait=False, cancel_futures=True)
        log.info("peer registry closed (%d runners)", len(runners))
