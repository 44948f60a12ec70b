"""Capture on a visit: start a protocol, connect the patient's camera, begin, take, skip, overview.

Deployment (multi-process): a visit's runner, and with it the patient's WebRTC peer, lives in
the process that answered ``POST /api/visits/{id}/capture/peer``; nothing is forwarded between
processes. Route ``/api/visits/{visit_id}/capture/*`` sticky by visit id. The visit records the
process that answered its latest peer (``visits.capture_instance``, working state); a command
reaching another process gets 409 ``capture_peer_elsewhere``. Device uploads need no runner.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from telehealth import metrics
from telehealth.capture.catalogue import ProtocolCatalogue
from telehealth.capture.protocol import CaptureProtocol, ProtocolStep
from telehealth.capture.registry import BadOffer, PeerRegistry, RegistryClosed
from telehealth.capture.rtcice import IceServerLike, rtc_ice_servers
from telehealth.capture.runner import CaptureRunner, NoStream, StepMark, StillCut
from telehealth.handlers.uow import UnitOfWork
from telehealth.records import audit, captures, visits
from telehealth.records.errors import DomainError, InvalidInput, InvalidStateError, RecordNotFound
from telehealth.records.mediastore import MediaStore
from telehealth.records.models import (
    Capture,
    CaptureKind,
    CaptureNote,
    CaptureStatus,
    MediaFile,
    Provenance,
    Visit,
    VisitState,
)

from .events import CaptureChange, CaptureListener, notify
from .responses import CaptureStatusOut, ProtocolOut, TakeOut, TakeResultOut, by_capture
from .series import visit_steps

__all__ = ["CaptureTakes", "ConsentRequired", "PeerElsewhere", "capturable", "consented", "store_still_take"]

log = logging.getLogger(__name__)

# Scheduled too: nothing on main moves a visit to waiting/in_call yet (signaling does), and a
# clinic may capture at the start of a visit before the call state is recorded.
CAPTURE_STATES = frozenset({VisitState.SCHEDULED, VisitState.WAITING, VisitState.IN_CALL})


class ConsentRequired(DomainError):
    """The patient has not consented to photo and video capture."""

    code = "consent_required"
    status = 409


class PeerElsewhere(DomainError):
    """The visit's capture peer is held by another server process."""

    code = "capture_peer_elsewhere"
    status = 409


def consented(visit: Visit) -> None:
    """Capture and uploads need the patient's consent."""
    if visit.consent_capture is not True:
        raise ConsentRequired("the patient has not consented to photo and video capture")


def capturable(visit: Visit) -> None:
    """Takes need consent and a visit that is still going: an ended visit's series is final."""
    consented(visit)
    if visit.state not in CAPTURE_STATES:
        raise InvalidStateError(f"no capture on a {visit.state.value} visit")


def _complete(protocol: CaptureProtocol, takes: Sequence[Capture]) -> bool:
    """Every non-optional step has a stored or skipped current take of each kind it captures."""
    current = {(step, kind): c for (_, step, kind), (c, _) in captures.current_takes(takes).items()}
    done = (CaptureStatus.STORED, CaptureStatus.SKIPPED)
    for step in protocol.steps:
        kinds = [k for k, wanted in ((CaptureKind.STILL, step.still), (CaptureKind.CLIP, step.clip)) if wanted]
        for kind in kinds if not step.optional else ():
            take = current.get((step.id, kind))
            if take is None or take.status not in done:
                return False
    return True


@dataclass(frozen=True, slots=True)
class _Made:
    take: Capture
    media: list[MediaFile]


class CaptureTakes:
    """The capture rules of a visit; one instance per process (it holds the peer registry)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        store: MediaStore,
        peers: PeerRegistry,
        catalogue: ProtocolCatalogue,
        *,
        ice_servers: Callable[[str], Sequence[IceServerLike]],
        listener: Callable[[], CaptureListener],
    ) -> None:
        self._sessionmaker = sessionmaker
        self._store = store
        self.peers = peers
        self.catalogue = catalogue
        self._ice_servers = ice_servers
        self._listener = listener
        self._locks: weakref.WeakValueDictionary[uuid.UUID, asyncio.Lock] = weakref.WeakValueDictionary()

    async def changed(self, visit_id: uuid.UUID, reason: CaptureChange) -> None:
        """Tell the app's capture listener (after the change is committed)."""
        await notify(self._listener(), visit_id, reason)

    def _lock(self, visit_id: uuid.UUID) -> asyncio.Lock:
        # Takes of one visit are serialized: each must see the previous one to supersede it.
        lock = self._locks.get(visit_id)
        if lock is None:
            lock = self._locks[visit_id] = asyncio.Lock()
        return lock

    # -- protocol -------------------------------------------------------------------------

    def protocol(self, protocol_id: str | None) -> CaptureProtocol:
        """A known protocol by id, newest version (None: the default)."""
        found = self.catalogue.default if protocol_id is None else self.catalogue.latest(protocol_id)
        if found is None:
            raise InvalidInput(
                f"unknown protocol {protocol_id!r}",
                details=[{"field": "protocol_id", "message": f"known: {', '.join(self.catalogue.ids())}"}],
            )
        return found

    def visit_protocol(self, visit: Visit) -> CaptureProtocol | None:
        """The protocol (id and version) the visit's capture runs under, None before start."""
        if visit.protocol_id is None:
            return None
        found = self.catalogue.get(visit.protocol_id, visit.protocol_version or "")
        if found is None:
            raise InvalidStateError(f"protocol {visit.protocol_id} v{visit.protocol_version} is no longer available")
        return found

    def _step(self, visit: Visit, step_id: str) -> ProtocolStep:
        protocol = self.visit_protocol(visit)
        if protocol is None:
            raise InvalidStateError("capture has not been started for this visit")
        try:
            return protocol.step(step_id)
        except KeyError:
            raise RecordNotFound(f"step {step_id!r} is not in protocol {protocol.id}") from None

    def _local(self, visit: Visit) -> CaptureRunner | None:
        """The local runner; PeerElsewhere when the visit's latest peer was answered by another process."""
        runner = self.peers.get(visit.id)
        if runner is None and visit.capture_instance not in (None, self.peers.instance):
            raise PeerElsewhere(
                "the patient's camera is connected to another server process (or that process restarted): "
                "route /api/visits/{id}/capture/* to one process per visit, or ask the patient to reconnect"
            )
        return runner

    # -- operations -----------------------------------------------------------------------

    async def start(self, visit_id: uuid.UUID, protocol_id: str | None, actor: audit.Actor) -> ProtocolOut:
        """Start (or restart) capture on a visit with a protocol, recorded on the visit."""
        protocol = self.protocol(protocol_id)
        async with UnitOfWork(self._sessionmaker, actor) as uow:
            visit = await visits.get_visit(uow.db, visit_id)
            consented(visit)
            if visit.state not in CAPTURE_STATES:
                raise InvalidStateError(f"capture cannot start on a {visit.state.value} visit")
            changes = (visit.protocol_id, visit.protocol_version) != (protocol.id, str(protocol.version))
            if changes and visit.protocol_id is not None and await captures.visit_takes(uow.db, visit.id):
                raise InvalidStateError(f"this visit already has takes under protocol {visit.protocol_id}")
            visit.protocol_id, visit.protocol_version = protocol.id, str(protocol.version)
            uow.audit(
                "capture_start",
                object_type="visit",
                object_id=visit.id,
                patient_id=visit.patient_id,
                detail={"protocol": protocol.id, "version": protocol.version},
            )
        await self.changed(visit_id, CaptureChange.STARTED)
        return ProtocolOut.of(protocol)

    async def connect(self, visit_id: uuid.UUID, offer_sdp: str, actor: audit.Actor) -> str:
        """Answer the patient's offer with a new server peer, replacing the visit's old one."""
        async with self._sessionmaker() as db:
            capturable(await visits.get_visit(db, visit_id))
        servers = rtc_ice_servers(self._ice_servers(f"capture-{visit_id.hex}"))
        try:
            answer = await self.peers.connect(visit_id, offer_sdp, servers)
        except RegistryClosed as exc:
            raise InvalidStateError(str(exc)) from None
        except BadOffer as exc:
            raise InvalidInput(str(exc)) from None
        async with UnitOfWork(self._sessionmaker, actor) as uow:
            visit = await visits.get_visit(uow.db, visit_id)
            replaced = visit.capture_instance is not None
            visit.capture_instance = self.peers.instance
            uow.audit(
                "capture_peer",
                object_type="visit",
                object_id=visit_id,
                patient_id=visit.patient_id,
                detail={"instance": self.peers.instance, "replaced": replaced},
            )
        return answer

    async def begin(self, visit_id: uuid.UUID, step_id: str) -> StepMark:
        """Mark the start of a step's capture window."""
        async with self._sessionmaker() as db:
            visit = await visits.get_visit(db, visit_id)
        capturable(visit)
        step = self._step(visit, step_id)
        runner = self._local(visit)
        if runner is None:
            raise NoStream("the patient's camera is not connected for capture")
        return runner.begin(step)

    async def take(self, visit_id: uuid.UUID, step_id: str, actor: audit.Actor, by: uuid.UUID | None) -> TakeResultOut:
        """Take a step: still now (stored before returning), clip after the post-roll."""
        clicked = time.perf_counter()
        click = time.monotonic()  # the peers' timebase (ServerCapturePeer's default clock)
        async with self._lock(visit_id):
            async with self._sessionmaker() as db:
                visit = await visits.get_visit(db, visit_id)
            capturable(visit)
            step = self._step(visit, step_id)
            runner = self._local(visit)
            cut = await runner.cut_still(step, click) if runner is not None and step.still else None
            if cut is not None:
                metrics.record_capture(
                    "still", ok=True, nbytes=len(cut.image.data), seconds=time.perf_counter() - clicked
                )
            async with UnitOfWork(self._sessionmaker, actor) as uow:
                still = None
                if step.still:
                    still = _Made(*await store_still_take(uow.db, self._store, visit_id, step.id, cut, by))
                clip = None
                if step.clip:
                    take = await captures.new_take(
                        uow.db, visit_id=visit_id, step_id=step.id, kind=CaptureKind.CLIP, created_by=by
                    )
                    clip = _Made(take, [])
                first = still or clip
                assert first is not None  # a protocol step captures a still, a clip, or both
                uow.audit(
                    "capture",
                    object_type="capture",
                    object_id=first.take.id,
                    patient_id=visit.patient_id,
                    detail={
                        "step_id": step.id,
                        "still": str(still.take.id) if still else None,
                        "clip": str(clip.take.id) if clip else None,
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
            runner.cut_clip_later(step, clip.take.id, click, by)
        await self.changed(visit_id, CaptureChange.TAKE)
        return TakeResultOut(step_id=step.id, still=_out(still), clip=_out(clip))

    async def skip(
        self, visit_id: uuid.UUID, step_id: str, reason: str, actor: audit.Actor, by: uuid.UUID | None
    ) -> TakeResultOut:
        """Record that a step was skipped, with the reason (a take of each kind the step has)."""
        async with self._lock(visit_id), UnitOfWork(self._sessionmaker, actor) as uow:
            visit = await visits.get_visit(uow.db, visit_id)
            capturable(visit)
            step = self._step(visit, step_id)
            made: dict[CaptureKind, _Made] = {}
            for kind, wanted in ((CaptureKind.STILL, step.still), (CaptureKind.CLIP, step.clip)):
                if wanted:
                    take = await captures.new_take(uow.db, visit_id=visit_id, step_id=step.id, kind=kind, created_by=by)
                    take.status, take.skip_reason = CaptureStatus.SKIPPED, reason
                    made[kind] = _Made(take, [])
            await uow.db.flush()
            uow.audit(
                "capture_skip",
                object_type="visit",
                object_id=visit_id,
                patient_id=visit.patient_id,
                detail={"step_id": step.id, "reason": reason},
            )
        await self.changed(visit_id, CaptureChange.SKIP)
        return TakeResultOut(
            step_id=step.id, still=_out(made.get(CaptureKind.STILL)), clip=_out(made.get(CaptureKind.CLIP))
        )

    async def overview(self, visit_id: uuid.UUID) -> CaptureStatusOut:
        """The visit's protocol, peer state, and every take of every step."""
        async with self._sessionmaker() as db:
            visit = await visits.get_visit(db, visit_id)
            takes = await captures.visit_takes(db, visit_id, include_superseded=True)
            rows = await db.scalars(
                select(MediaFile).where(MediaFile.visit_id == visit_id).order_by(MediaFile.created_at, MediaFile.id)
            )
            media = by_capture(rows)
            counted = await db.execute(
                select(CaptureNote.capture_id, func.count())
                .where(CaptureNote.visit_id == visit_id)
                .group_by(CaptureNote.capture_id)
            )
            notes: dict[uuid.UUID, int] = {cid: n for cid, n in counted.all()}
        protocol = self.visit_protocol(visit)
        runner = self.peers.get(visit_id)
        return CaptureStatusOut(
            protocol=ProtocolOut.of(protocol) if protocol else None,
            peer=runner.peer_state if runner else "none",
            current_step=runner.current_step if runner else None,
            steps=visit_steps(protocol.steps if protocol else (), takes, media, notes),
            complete=protocol is not None and _complete(protocol, takes),
        )


async def store_still_take(
    db: AsyncSession, store: MediaStore, visit_id: uuid.UUID, step_id: str, cut: StillCut | None, by: uuid.UUID | None
) -> tuple[Capture, list[MediaFile]]:
    """A new still take (superseding the step's last); with a cut from the stream, stored now, else pending."""
    take = await captures.new_take(db, visit_id=visit_id, step_id=step_id, kind=CaptureKind.STILL, created_by=by)
    media: list[MediaFile] = []
    if cut is not None:
        image = cut.image
        full = captures.MediaInfo(image.content_type, Provenance.STREAM, image.width, image.height)
        thumb = captures.MediaInfo(image.thumbnail_content_type, Provenance.STREAM)
        for content, info, primary in ((image.data, full, True), (image.thumbnail, thumb, False)):
            media.append(
                await captures.add_media(
                    db,
                    store,
                    visit_id=visit_id,
                    capture_id=take.id,
                    content=content,
                    info=info,
                    primary=primary,
                    thumbnail=not primary,
                    created_by=by,
                )
            )
        take.status, take.quality = CaptureStatus.STORED, cut.quality.to_json()
    return take, media


def _out(made: _Made | None) -> TakeOut | None:
    return TakeOut.of(made.take, made.media) if made is not None else None
