"""One visit's capture session: the patient's server peer, the current step, its clip tasks.

The runner is the only place that talks to a ServerCapturePeer. It cuts a step's still at
once (the clinician is waiting for it) and its clip after a post-roll, in a background task
it owns: the clip then shows rest -> peak -> relax. Clip tasks write their own records.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from telehealth import metrics
from telehealth.records import captures
from telehealth.records.errors import DomainError
from telehealth.records.mediastore import MediaStore
from telehealth.records.models import CaptureStatus, Provenance
from telehealth.records.quality import CaptureQuality
from telehealth.records.types import utcnow

from .protocol import MAX_CLIP_SECONDS, ProtocolStep
from .quality import assess_still_bytes
from .result import CaptureUnavailable, Clip, StillImage, StillScores
from .serverpeer import PeerState, ServerCapturePeer

__all__ = ["CaptureRunner", "NoStream", "PeerStatus", "StepMark", "StillCut", "store_stream_clip"]

log = logging.getLogger(__name__)

POSTROLL_SECONDS = 1.5  # after the click: the clip ends relaxed, not at the peak
_WINDOW_MARGIN = 0.5  # keeps a late window inside the core's 90 s limit


PeerStatus = Literal["none", "connecting", "receiving", "closed"]


class NoStream(DomainError):
    """The patient's camera stream is not being received by this server."""

    code = "no_stream"
    status = 409


@dataclass(frozen=True, slots=True)
class StepMark:
    """The step in progress: where its capture window starts."""

    step_id: str
    start: float  # the peer's monotonic clock
    started_at: datetime


@dataclass(frozen=True, slots=True)
class StillCut:
    """A still cut from the stream, with its quality figures."""

    image: StillImage
    scores: StillScores
    quality: CaptureQuality


async def store_stream_clip(
    db: AsyncSession, store: MediaStore, capture_id: uuid.UUID, clip: Clip, *, postroll: float, by: uuid.UUID | None
) -> None:
    """Store a take's clip cut from the stream; a device copy that arrived first stays primary."""
    capture = await captures.get_capture(db, capture_id)
    device_first = any(m.provenance is Provenance.DEVICE for m in await captures.media_of(db, capture_id))
    info = captures.MediaInfo(
        clip.content_type, Provenance.STREAM, clip.width, clip.height, round(clip.duration * 1000), clip.frame_count
    )
    await captures.add_media(
        db,
        store,
        visit_id=capture.visit_id,
        capture_id=capture_id,
        content=clip.data,
        info=info,
        primary=not device_first,
        created_by=by,
    )
    capture.status = CaptureStatus.STORED
    if not device_first:
        capture.quality = CaptureQuality(
            source="stream",
            preroll_seconds=round(clip.preroll, 2),
            postroll_seconds=round(postroll, 2),
            resolution_changed=clip.resolution_changed,
            flags=["resolution_changed"] if clip.resolution_changed else [],
        ).to_json()


class CaptureRunner:
    """Owns one visit's ServerCapturePeer, its current step and its background clip tasks.

    Times (click, window start) are on the peer's clock, ``time.monotonic``. ``on_clip`` is
    awaited after a clip task committed its outcome: True when the clip was stored, False when
    the take was marked failed.
    """

    def __init__(
        self,
        visit_id: uuid.UUID,
        peer: ServerCapturePeer,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        store: MediaStore,
        executor: Executor,
        postroll: float = POSTROLL_SECONDS,
        on_clip: Callable[[bool], Awaitable[None]] | None = None,
    ) -> None:
        self.visit_id = visit_id
        self._on_clip = on_clip
        self.peer = peer
        self._sessionmaker = sessionmaker
        self._store = store
        self._executor = executor
        self._postroll = postroll
        self._mark: StepMark | None = None
        self._clips: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def peer_state(self) -> PeerStatus:
        """connecting/receiving/closed as the API reports it."""
        state = self.peer.state
        if state is PeerState.RECEIVING:
            return "receiving"
        return "closed" if state is PeerState.CLOSED else "connecting"

    @property
    def receiving(self) -> bool:
        """Whether the patient's stream is arriving."""
        return self.peer.state is PeerState.RECEIVING and not self._closed

    @property
    def current_step(self) -> str | None:
        """The step begun last, if any."""
        return self._mark.step_id if self._mark else None

    @property
    def pending_clips(self) -> int:
        """Clip tasks still running (for monitoring and tests)."""
        return len(self._clips)

    async def answer(self, offer_sdp: str) -> str:
        """Answer the patient's offer."""
        return await self.peer.answer(offer_sdp)

    def begin(self, step: ProtocolStep) -> StepMark:
        """Start the step's window now: the peer holds history and starts scoring frames."""
        if not self.receiving:
            raise NoStream("the patient's camera stream is not being received; ask them to reconnect the camera")
        start = self.peer.mark_step_start(step.still_rule)
        self._mark = StepMark(step.id, start, utcnow())
        log.info("visit %s: step %s begins", self.visit_id, step.id)
        return self._mark

    def window_start(self, step: ProtocolStep, click: float) -> float:
        """Where the step's window starts: its begin, else the step's clip length before the click."""
        if self._mark is not None and self._mark.step_id == step.id:
            start = self._mark.start
        else:
            start = click - step.clip_seconds  # taken without begin: best effort, documented
        # Room for the post-roll inside the core's longest window.
        return max(start, click + self._postroll - MAX_CLIP_SECONDS + _WINDOW_MARGIN)

    async def cut_still(self, step: ProtocolStep, click: float) -> StillCut | None:
        """The step's still from the window begin..click; None when the stream cannot give one."""
        if not self.receiving:
            return None
        start = self.window_start(step, click)
        try:
            result = await self.peer.capture(step.id, start, click, still=True, clip=False, rule=step.still_rule)
        except (CaptureUnavailable, ValueError) as exc:
            log.warning("visit %s step %s: no still from the stream: %s", self.visit_id, step.id, exc)
            return None
        assert result.still is not None and result.scores is not None
        still, scores = result.still, result.scores
        loop = asyncio.get_running_loop()
        quality = await loop.run_in_executor(
            self._executor,
            lambda: assess_still_bytes(still.thumbnail, still.width, still.height, source="stream", scores=scores),
        )
        return StillCut(still, scores, quality)

    def cut_clip_later(self, step: ProtocolStep, capture_id: uuid.UUID, click: float, by: uuid.UUID | None) -> bool:
        """Cut and store the step's clip after the post-roll, in a task this runner owns."""
        if not self.receiving:
            return False
        start = self.window_start(step, click)
        task = asyncio.get_running_loop().create_task(self._clip(step, capture_id, start, click + self._postroll, by))
        self._clips.add(task)
        task.add_done_callback(self._clips.discard)
        return True

    async def _clip(
        self, step: ProtocolStep, capture_id: uuid.UUID, start: float, end: float, by: uuid.UUID | None
    ) -> None:
        started = time.perf_counter()
        try:
            result = await self.peer.capture(step.id, start, end, still=False, clip=True, rule=step.still_rule)
            clip = result.clip
            assert clip is not None
            async with self._sessionmaker() as db, db.begin():
                await store_stream_clip(db, self._store, capture_id, clip, postroll=self._postroll, by=by)
            metrics.record_capture("clip", ok=True, nbytes=len(clip.data), seconds=time.perf_counter() - started)
            log.info(
                "visit %s step %s: clip stored (%.1f s, %d frames)",
                self.visit_id,
                step.id,
                clip.duration,
                clip.frame_count,
            )
            if self._on_clip is not None:
                await self._on_clip(True)
        except asyncio.CancelledError:
            await asyncio.shield(self._fail(capture_id, "the server shut down before the clip was cut"))
            raise
        except (CaptureUnavailable, ValueError) as exc:
            log.warning("visit %s step %s: clip failed: %s", self.visit_id, step.id, exc)
            await self._fail(capture_id, f"the stream had no usable clip: {exc}")
        except Exception:
            log.exception("visit %s step %s: clip could not be stored", self.visit_id, step.id)
            await self._fail(capture_id, "the clip could not be stored")

    async def _fail(self, capture_id: uuid.UUID, reason: str) -> None:
        """Mark a still-pending clip take failed so the clinician sees it (an upload may fill it)."""
        metrics.record_capture("clip", ok=False)
        try:
            async with self._sessionmaker() as db, db.begin():
                capture = await captures.get_capture(db, capture_id)
                if capture.status is CaptureStatus.PENDING:
                    capture.status = CaptureStatus.FAILED
                    capture.quality = CaptureQuality(source="stream", error=reason).to_json()
        except Exception:
            log.exception("could not mark capture %s failed", capture_id)
            return
        if self._on_clip is not None:
            await self._on_clip(False)

    async def close(self, grace: float = 5.0) -> None:
        """Let clip tasks finish (up to ``grace`` s), cancel the rest, then close the peer."""
        self._closed = True
        if self._clips:
            _, pending = await asyncio.wait(set(self._clips), timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self.peer.close()
        log.info("visit %s: capture runner closed", self.visit_id)
