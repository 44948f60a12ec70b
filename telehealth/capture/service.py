"""The app-level capture service: visit id -> runner, and every capture operation the API offers.

Deployment (multi-process): a visit's runner, and with it the patient's WebRTC peer, lives
in the process that answered ``POST /api/visits/{id}/capture/peer``; nothing is forwarded
between processes. A deployment with several processes must therefore route
``/api/visits/{visit_id}/capture/*`` sticky by visit id (e.g. hash the path's visit id at
the load balancer). A command that reaches a process without the runner, while the audit
trail shows another process answered the latest peer, gets 409 ``capture_peer_elsewhere``.
Device uploads (``/api/captures/{id}/upload``) need no runner and may land anywhere.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import StreamReader, web
from aiortc import RTCIceServer
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from telehealth.handlers.capture.events import CaptureChange, CaptureListener, NoCaptureListener, notify
from telehealth.keys import CAPTURE, CAPTURE_LISTENER, MEDIA_STORE, SESSIONMAKER, SETTINGS
from telehealth.records import audit, captures, visits
from telehealth.records.errors import DomainError, InvalidInput, InvalidStateError, RecordNotFound, UnsupportedMedia
from telehealth.records.mediastore import MediaStore
from telehealth.records.models import (
    AuditEvent,
    Capture,
    CaptureKind,
    CaptureStatus,
    MediaFile,
    Provenance,
    Visit,
    VisitState,
)
from telehealth.settings import Settings
from telehealth.signaling.turn import turn_credentials

from . import uploads
from .protocol import CaptureProtocol, ProtocolStep, default_protocol
from .runner import CaptureRunner, NoStream, PeerStatus, StepMark
from .serverpeer import PeerSettings, PeerState, ServerCapturePeer

__all__ = [
    "CaptureOverview",
    "CaptureService",
    "ConsentRequired",
    "PeerElsewhere",
    "StepProgress",
    "TakeRecord",
    "TakeResult",
    "capture_context",
    "ice_servers",
]

log = logging.getLogger(__name__)

# Scheduled too: nothing on main moves a visit to waiting/in_call yet (signaling does), and a
# clinic may capture at the start of a visit before the call state is recorded.
_CAPTURE_STATES = frozenset({VisitState.SCHEDULED, VisitState.WAITING, VisitState.IN_CALL})
_UPLOAD_IDS = uuid.UUID("6f1d3c2e-6a55-4b8e-9a51-2f1e0d7c9b10")  # namespace of idempotent upload ids
MAX_IDEMPOTENCY_KEY = 128


class ConsentRequired(DomainError):
    """The patient has not consented to photo and video capture."""

    code = "consent_required"
    status = 409


class PeerElsewhere(DomainError):
    """The visit's capture peer is held by another server process."""

    code = "capture_peer_elsewhere"
    status = 409


@dataclass(frozen=True, slots=True)
class TakeRecord:
    """A take with its media files."""

    capture: Capture
    media: Sequence[MediaFile]
    superseded: bool = False


@dataclass(frozen=True, slots=True)
class TakeResult:
    """What a take (or skip) of a step created."""

    step_id: str
    still: TakeRecord | None
    clip: TakeRecord | None


@dataclass(frozen=True, slots=True)
class StepProgress:
    """A protocol step and all its takes, oldest first."""

    step: ProtocolStep
    takes: Sequence[TakeRecord]


@dataclass(frozen=True, slots=True)
class CaptureOverview:
    """Where a visit's capture stands."""

    protocol: CaptureProtocol | None
    peer: PeerStatus
    current_step: str | None
    steps: Sequence[StepProgress]
    complete: bool


def ice_servers(settings: Settings, name: str, now: float | None = None) -> list[RTCIceServer]:
    """STUN/TURN servers from settings; TURN credentials as coturn's use-auth-secret expects."""
    servers = []
    if settings.stun_urls:
        servers.append(RTCIceServer(urls=list(settings.stun_urls)))
    if settings.turn_urls and settings.turn_secret:
        when = time.time() if now is None else now
        username, credential = turn_credentials(settings.turn_secret, name, settings.turn_ttl_seconds, when)
        servers.append(RTCIceServer(urls=list(settings.turn_urls), username=username, credential=credential))
    return servers  # possibly empty: never aiortc's default public STUN server


def _complete(protocol: CaptureProtocol, current: dict[tuple[str, CaptureKind], Capture]) -> bool:
    """Every non-optional step has a stored or skipped current take of each kind it captures."""
    done = (CaptureStatus.STORED, CaptureStatus.SKIPPED)
    for step in protocol.steps:
        if step.optional:
            continue
        kinds = [k for k, wanted in ((CaptureKind.STILL, step.still), (CaptureKind.CLIP, step.clip)) if wanted]
        for kind in kinds:
            take = current.get((step.id, kind))
            if take is None or take.status not in done:
                return False
    return True


class CaptureService:
    """Registry of the visits' capture runners plus the capture operations (one per API call)."""

    def __init__(
        self,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        store: MediaStore,
        *,
        peer_settings: PeerSettings | None = None,
        protocols: Sequence[CaptureProtocol] = (),
        listener: Callable[[], CaptureListener] = NoCaptureListener,
    ) -> None:
        self.settings = settings
        self._listener = listener
        self.limits = uploads.UploadLimits.from_settings(settings)
        self.instance = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._sessionmaker = sessionmaker
        self._store = store
        self._peer_settings = peer_settings or PeerSettings()
        self._default = default_protocol()  # read once here: it is a package file
        self._protocols = {p.id: p for p in (self._default, *protocols)}
        # Shared by every peer: decoding, remuxing, encoding of stills and clips.
        self._capture_executor = ThreadPoolExecutor(max(2, os.cpu_count() or 2), thread_name_prefix="capture")
        # Uploads get their own threads: re-encoding a 12 MP photo must not delay a live still.
        self._upload_executor = ThreadPoolExecutor(2, thread_name_prefix="upload")
        self._runners: dict[uuid.UUID, CaptureRunner] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._events: set[asyncio.Task[None]] = set()
        self._locks: weakref.WeakValueDictionary[uuid.UUID, asyncio.Lock] = weakref.WeakValueDictionary()
        self._closed = False

    # -- helpers -------------------------------------------------------------------------

    def runner(self, visit_id: uuid.UUID) -> CaptureRunner | None:
        """This process's runner of the visit, if any."""
        return self._runners.get(visit_id)

    def _lock(self, visit_id: uuid.UUID) -> asyncio.Lock:
        # Takes of one visit are serialized: each must see the previous one to supersede it.
        lock = self._locks.get(visit_id)
        if lock is None:
            lock = self._locks[visit_id] = asyncio.Lock()
        return lock

    def protocol(self, protocol_id: str | None) -> CaptureProtocol:
        """A known protocol by id (None: the default)."""
        if protocol_id is None:
            return self._default
        found = self._protocols.get(protocol_id)
        if found is None:
            raise InvalidInput(
                f"unknown protocol {protocol_id!r}",
                details=[{"field": "protocol_id", "message": f"known: {', '.join(sorted(self._protocols))}"}],
            )
        return found

    def _visit_protocol(self, visit: Visit) -> CaptureProtocol | None:
        if visit.protocol_id is None:
            return None
        found = self._protocols.get(visit.protocol_id)
        if found is None or str(found.version) != visit.protocol_version:
            raise InvalidStateError(f"protocol {visit.protocol_id} v{visit.protocol_version} is no longer available")
        return found

    def _step(self, visit: Visit, step_id: str) -> ProtocolStep:
        protocol = self._visit_protocol(visit)
        if protocol is None:
            raise InvalidStateError("capture has not been started for this visit")
        try:
            return protocol.step(step_id)
        except KeyError:
            raise RecordNotFound(f"step {step_id!r} is not in protocol {protocol.id}") from None

    @staticmethod
    def _consented(visit: Visit) -> None:
        if visit.consent_capture is not True:
            raise ConsentRequired("the patient has not consented to photo and video capture")

    @classmethod
    def _capturable(cls, visit: Visit) -> None:
        """Takes need consent and a visit that is still going: an ended visit's series is final."""
        cls._consented(visit)
        if visit.state not in _CAPTURE_STATES:
            raise InvalidStateError(f"no capture on a {visit.state.value} visit")

    async def _check_local(self, db: AsyncSession, visit: Visit) -> CaptureRunner | None:
        """The local runner; PeerElsewhere when the latest peer was answered by another process."""
        runner = self._runners.get(visit.id)
        if runner is not None:
            return runner
        latest = await db.scalar(
            select(AuditEvent)
            .where(
                AuditEvent.patient_id == visit.patient_id,
                AuditEvent.action == "capture_peer",
                AuditEvent.object_id == str(visit.id),
            )
            .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
            .limit(1)
        )
        holder = (latest.detail or {}).get("instance") if latest is not None else None
        if holder is not None and holder != self.instance:
            raise PeerElsewhere(
                "the patient's camera is connected to another server process (or that process restarted): "
                "route /api/visits/{id}/capture/* to one process per visit, or ask the patient to reconnect"
            )
        return None

    async def _changed(self, visit_id: uuid.UUID, reason: CaptureChange) -> None:
        await notify(self._listener(), visit_id, reason)

    def _peer_moved(self, visit_id: uuid.UUID, state: PeerState) -> None:
        # Called synchronously by the peer; the listener is awaited in a task this service owns.
        task = asyncio.get_running_loop().create_task(self._changed(visit_id, CaptureChange.PEER_STATE))
        self._events.add(task)
        task.add_done_callback(self._events.discard)

    # -- operations ----------------------------------------------------------------------

    async def start(self, visit_id: uuid.UUID, protocol_id: str | None, actor: audit.Actor) -> CaptureProtocol:
        """Start (or restart) capture on a visit with a protocol, recorded on the visit."""
        protocol = self.protocol(protocol_id)
        async with self._sessionmaker() as db, db.begin():
            visit = await visits.get_visit(db, visit_id)
            self._consented(visit)
            if visit.state not in _CAPTURE_STATES:
                raise InvalidStateError(f"capture cannot start on a {visit.state.value} visit")
            changes = (visit.protocol_id, visit.protocol_version) != (protocol.id, str(protocol.version))
            if changes and visit.protocol_id is not None and await captures.visit_takes(db, visit.id):
                raise InvalidStateError(f"this visit already has takes under protocol {visit.protocol_id}")
            visit.protocol_id, visit.protocol_version = protocol.id, str(protocol.version)
            audit.record(
                db,
                actor,
                "capture_start",
                object_type="visit",
                object_id=visit.id,
                patient_id=visit.patient_id,
                detail={"protocol": protocol.id, "version": protocol.version},
            )
        await self._changed(visit_id, CaptureChange.STARTED)
        return protocol

    async def connect(self, visit_id: uuid.UUID, offer_sdp: str, actor: audit.Actor) -> str:
        """Answer the patient's offer with a new server peer, replacing the visit's old one."""
        if self._closed:
            raise InvalidStateError("the server is shutting down")
        async with self._sessionmaker() as db, db.begin():
            visit = await visits.get_visit(db, visit_id)
            self._consented(visit)
            if visit.state not in _CAPTURE_STATES:
                raise InvalidStateError(f"no capture on a {visit.state.value} visit")
            patient_id = visit.patient_id
        peer = ServerCapturePeer(
            ice_servers(self.settings, f"capture-{visit_id.hex}"),
            settings=self._peer_settings,
            executor=self._capture_executor,
            on_state=lambda state: self._peer_moved(visit_id, state),
        )

        async def on_clip(stored: bool) -> None:
            await self._changed(visit_id, CaptureChange.CLIP_STORED if stored else CaptureChange.CLIP_FAILED)

        runner = CaptureRunner(
            visit_id,
            peer,
            sessionmaker=self._sessionmaker,
            store=self._store,
            executor=self._capture_executor,
            on_clip=on_clip,
        )
        try:
            answer = await runner.answer(offer_sdp)
        except Exception as exc:  # aiortc's SDP parser raises many kinds on malformed input
            await peer.close()
            log.info("visit %s: unusable offer: %r", visit_id, exc)
            raise InvalidInput("the SDP offer could not be used (it needs a VP8 video m-line)") from exc
        old = self._runners.get(visit_id)
        self._runners[visit_id] = runner
        if old is not None:
            self._close_later(old)
        async with self._sessionmaker() as db, db.begin():
            audit.record(
                db,
                actor,
                "capture_peer",
                object_type="visit",
                object_id=visit_id,
                patient_id=patient_id,
                detail={"instance": self.instance, "replaced": old is not None},
            )
        return answer

    def _close_later(self, runner: CaptureRunner) -> None:
        # The replaced runner may still be cutting a clip; the new peer must not wait for it.
        task = asyncio.get_running_loop().create_task(runner.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def begin(self, visit_id: uuid.UUID, step_id: str) -> StepMark:
        """Mark the start of a step's capture window."""
        async with self._sessionmaker() as db:
            visit = await visits.get_visit(db, visit_id)
            self._capturable(visit)
            step = self._step(visit, step_id)
            runner = await self._check_local(db, visit)
        if runner is None:
            raise NoStream("the patient's camera is not connected for capture")
        return runner.begin(step)

    async def take(self, visit_id: uuid.UUID, step_id: str, actor: audit.Actor, by: uuid.UUID | None) -> TakeResult:
        """Take a step: still now (stored before returning), clip after the post-roll."""
        clicked = time.perf_counter()
        click = time.monotonic()  # the peers' timebase (ServerCapturePeer's default clock)
        async with self._lock(visit_id):
            async with self._sessionmaker() as db:
                visit = await visits.get_visit(db, visit_id)
                self._capturable(visit)
                step = self._step(visit, step_id)
                runner = await self._check_local(db, visit)
            cut = await runner.cut_still(step, click) if runner is not None and step.still else None
            async with self._sessionmaker() as db, db.begin():
                still = clip = None
                if step.still:
                    take = await captures.new_take(
                        db, visit_id=visit_id, step_id=step.id, kind=CaptureKind.STILL, created_by=by
                    )
                    media: list[MediaFile] = []
                    if cut is not None:
                        image = cut.image
                        info = captures.MediaInfo(image.content_type, Provenance.STREAM, image.width, image.height)
                        thumb_info = captures.MediaInfo(image.thumbnail_content_type, Provenance.STREAM)
                        media.append(
                            await captures.add_media(
                                db,
                                self._store,
                                visit_id=visit_id,
                                capture_id=take.id,
                                content=image.data,
                                info=info,
                                primary=True,
                                created_by=by,
                            )
                        )
                        media.append(
                            await captures.add_media(
                                db,
                                self._store,
                                visit_id=visit_id,
                                capture_id=take.id,
                                content=image.thumbnail,
                                info=thumb_info,
                                thumbnail=True,
                                created_by=by,
                            )
                        )
                        take.status, take.quality = CaptureStatus.STORED, cut.quality
                    still = TakeRecord(take, media)
                if step.clip:
                    take = await captures.new_take(
                        db, visit_id=visit_id, step_id=step.id, kind=CaptureKind.CLIP, created_by=by
                    )
                    clip = TakeRecord(take, [])
                first = still or clip
                assert first is not None  # a protocol step captures a still, a clip, or both
                audit.record(
                    db,
                    actor,
                    "capture",
                    object_type="capture",
                    object_id=first.capture.id,
                    patient_id=visit.patient_id,
                    detail={
                        "step_id": step.id,
                        "still": str(still.capture.id) if still else None,
                        "clip": str(clip.capture.id) if clip else None,
                        "from_stream": cut is not None,
                    },
                )
        if step.still:
            log.info(
                "visit %s step %s: still %s %.0f ms after the click",
                visit_id,
                step.id,
                "stored" if cut is not None else "pending (no stream)",
                (time.perf_counter() - clicked) * 1000,
            )
        if clip is not None and runner is not None:
            runner.cut_clip_later(step, clip.capture.id, click, by)
        await self._changed(visit_id, CaptureChange.TAKE)
        return TakeResult(step.id, still, clip)

    async def skip(
        self, visit_id: uuid.UUID, step_id: str, reason: str, actor: audit.Actor, by: uuid.UUID | None
    ) -> TakeResult:
        """Record that a step was skipped, with the reason (a take of each kind the step has)."""
        async with self._lock(visit_id), self._sessionmaker() as db, db.begin():
            visit = await visits.get_visit(db, visit_id)
            self._capturable(visit)
            step = self._step(visit, step_id)
            made: dict[CaptureKind, TakeRecord] = {}
            for kind, wanted in ((CaptureKind.STILL, step.still), (CaptureKind.CLIP, step.clip)):
                if wanted:
                    take = await captures.new_take(db, visit_id=visit_id, step_id=step.id, kind=kind, created_by=by)
                    take.status, take.skip_reason = CaptureStatus.SKIPPED, reason
                    made[kind] = TakeRecord(take, [])
            await db.flush()
            audit.record(
                db,
                actor,
                "capture_skip",
                object_type="visit",
                object_id=visit_id,
                patient_id=visit.patient_id,
                detail={"step_id": step.id, "reason": reason},
            )
        await self._changed(visit_id, CaptureChange.SKIP)
        return TakeResult(step.id, made.get(CaptureKind.STILL), made.get(CaptureKind.CLIP))

    async def overview(self, visit_id: uuid.UUID) -> CaptureOverview:
        """The visit's protocol, peer state, and every take of every step."""
        async with self._sessionmaker() as db:
            visit = await visits.get_visit(db, visit_id)
            protocol = self._visit_protocol(visit)
            takes = await captures.visit_takes(db, visit_id, include_superseded=True)
            rows = await db.scalars(
                select(MediaFile).where(MediaFile.visit_id == visit_id).order_by(MediaFile.created_at)
            )
            files = rows.all()
        by_capture: dict[uuid.UUID, list[MediaFile]] = {}
        for media in files:
            if media.capture_id is not None:
                by_capture.setdefault(media.capture_id, []).append(media)
        superseded = {t.supersedes_id for t in takes if t.supersedes_id is not None}
        current = {(t.step_id, t.kind): t for t in takes if t.id not in superseded}
        steps = []
        for step in protocol.steps if protocol else ():
            records = [
                TakeRecord(t, by_capture.get(t.id, []), t.id in superseded) for t in takes if t.step_id == step.id
            ]
            steps.append(StepProgress(step, records))
        runner = self._runners.get(visit_id)
        return CaptureOverview(
            protocol=protocol,
            peer=runner.peer_state if runner else "none",
            current_step=runner.current_step if runner else None,
            steps=steps,
            complete=protocol is not None and _complete(protocol, current),
        )

    async def upload(
        self,
        capture_id: uuid.UUID,
        *,
        visit_scope: uuid.UUID,
        content_type: str | None,
        idempotency_key: str | None,
        body: StreamReader,
        content_length: int | None,
        actor: audit.Actor,
    ) -> tuple[MediaFile, bool]:
        """Store a device upload as the capture's primary file; returns (media, created)."""
        key = (idempotency_key or "").strip()
        if not key or len(key) > MAX_IDEMPOTENCY_KEY:
            raise InvalidInput(f"an Idempotency-Key header of 1-{MAX_IDEMPOTENCY_KEY} characters is required")
        ctype = uploads.declared_type(content_type)
        media_id = uuid.uuid5(_UPLOAD_IDS, f"{capture_id}:{key}")
        async with self._sessionmaker() as db:
            capture = await db.get(Capture, capture_id)
            if capture is None or capture.visit_id != visit_scope:
                raise RecordNotFound("capture not found")
            visit = await visits.get_visit(db, capture.visit_id)
            self._consented(visit)
            if (existing := await db.get(MediaFile, media_id)) is not None:
                return existing, False  # a repeat of an upload already stored
            if capture.status is CaptureStatus.SKIPPED:
                raise InvalidStateError("this step was skipped; take it again before uploading")
            wanted = uploads.IMAGE_TYPES if capture.kind is CaptureKind.STILL else uploads.VIDEO_TYPES
            if ctype not in wanted:
                raise UnsupportedMedia(f"a {capture.kind.value} capture takes {' or '.join(sorted(wanted))}")
            patient_id, kind = visit.patient_id, capture.kind
        loop = asyncio.get_running_loop()
        workdir = await loop.run_in_executor(self._upload_executor, uploads.upload_dir, self.settings.var_dir)
        try:
            raw = workdir / "body"
            head = await uploads.receive_body(
                body,
                raw,
                limit=self.limits.for_type(ctype),
                declared_length=content_length,
                executor=self._upload_executor,
            )
            if (sniffed := uploads.sniff(head)) != ctype:
                raise UnsupportedMedia(f"declared {ctype} but the body is {sniffed or 'not a supported type'}")
            return await self._store_upload(
                capture_id, media_id, kind, ctype, raw, workdir, patient_id=patient_id, actor=actor, key=key
            )
        except DomainError as exc:
            log.warning("upload to capture %s refused: %s (%s)", capture_id, exc.code, exc.message)
            raise
        except asyncio.CancelledError:  # the client went away and the server cancels handlers
            log.warning("upload to capture %s incomplete: the client went away", capture_id)
            raise
        finally:
            await loop.run_in_executor(self._upload_executor, uploads.remove_dir, workdir)

    async def _store_upload(
        self,
        capture_id: uuid.UUID,
        media_id: uuid.UUID,
        kind: CaptureKind,
        ctype: str,
        raw: Path,
        workdir: Path,
        *,
        patient_id: uuid.UUID,
        actor: audit.Actor,
        key: str,
    ) -> tuple[MediaFile, bool]:
        loop = asyncio.get_running_loop()
        content: bytes | Path
        thumbnail: bytes | None = None
        quality: dict[str, Any]
        if kind is CaptureKind.STILL:
            still = await loop.run_in_executor(self._upload_executor, uploads.prepare_still, raw, ctype, self.limits)
            content, thumbnail, quality = still.png, still.thumbnail, still.quality
            info = captures.MediaInfo("image/png", Provenance.DEVICE, still.width, still.height)
        else:
            clip = await loop.run_in_executor(
                self._upload_executor, uploads.prepare_clip, raw, ctype, workdir / "clean", self.limits
            )
            content = clip.path
            quality = {"version": 1, "source": "device", "width": clip.width, "height": clip.height}
            info = captures.MediaInfo(
                clip.content_type, Provenance.DEVICE, clip.width, clip.height, clip.duration_ms, clip.frames
            )
        try:
            async with self._sessionmaker() as db, db.begin():
                capture = await captures.get_capture(db, capture_id)
                visit_id = capture.visit_id
                media = await captures.add_media(
                    db, self._store, visit_id=visit_id, capture_id=capture_id, content=content, info=info, primary=True
                )
                # The id derives from (capture, Idempotency-Key): a concurrent repeat, even in
                # another process, collides on the primary key instead of adding a second row.
                media.id = media_id
                await db.flush()
                if thumbnail is not None:
                    await captures.add_media(
                        db,
                        self._store,
                        visit_id=visit_id,
                        capture_id=capture_id,
                        content=thumbnail,
                        info=captures.MediaInfo("image/jpeg", Provenance.DEVICE),
                        thumbnail=True,
                    )
                previous = capture.quality or {}
                # Keep the stream copy's figures next to the device's: both files stay.
                stream = previous if previous.get("source") == "stream" else previous.get("stream")
                capture.status = CaptureStatus.STORED
                capture.quality = {**quality, "stream": stream} if stream else quality
                audit.record(
                    db,
                    actor,
                    "upload",
                    object_type="media",
                    object_id=media.id,
                    patient_id=patient_id,
                    detail={
                        "capture_id": str(capture_id),
                        "kind": kind.value,
                        "content_type": info.content_type,
                        "size": media.size,
                        "sha256": media.sha256,
                        "idempotency_key": hashlib.sha256(key.encode()).hexdigest()[:16],
                    },
                )
        except IntegrityError:
            async with self._sessionmaker() as db:
                existing = await db.get(MediaFile, media_id)
            if existing is None:
                raise
            return existing, False
        log.info("capture %s: device %s stored (%d bytes)", capture_id, kind.value, media.size)
        await self._changed(visit_id, CaptureChange.UPLOAD_STORED)
        return media, True

    # -- lifecycle -----------------------------------------------------------------------

    async def close(self) -> None:
        """Close every peer (after its clip tasks) and shut the executors down."""
        self._closed = True
        runners = list(self._runners.values())
        self._runners.clear()
        await asyncio.gather(*(r.close() for r in runners), return_exceptions=True)
        await asyncio.gather(*self._closing, return_exceptions=True)
        await asyncio.gather(*self._events, return_exceptions=True)
        self._capture_executor.shutdown(wait=False, cancel_futures=True)
        self._upload_executor.shutdown(wait=False, cancel_futures=True)
        log.info("capture service closed (%d runners)", len(runners))


async def capture_context(app: web.Application) -> AsyncIterator[None]:
    """One cleanup_ctx entry: the capture service; at shutdown all peers close, all tasks end."""
    service = CaptureService(app[SETTINGS], app[SESSIONMAKER], app[MEDIA_STORE], listener=lambda: app[CAPTURE_LISTENER])
    app[CAPTURE] = service
    yield
    await service.close()
