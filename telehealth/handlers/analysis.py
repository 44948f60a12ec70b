"""Face measurements: measure stored stills in a process pool, keep every reading, compute a visit's numbers.

The service owns the landmark process pool and a bounded queue of stills waiting to be measured;
``analysis_context`` is its one ``cleanup_ctx`` entry. Reading a visit's measurements is audited.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

import numpy as np
from aiohttp import web
from numpy.typing import NDArray
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from telehealth import metrics
from telehealth.analysis.landmarks import CODE_VERSION, MODEL, model_version
from telehealth.analysis.metrics import Side
from telehealth.analysis.pool import LandmarkPool
from telehealth.analysis.visit import VisitAnalysis, analyse_visit
from telehealth.handlers.capture.events import CaptureChange, FanOutListener
from telehealth.handlers.uow import UnitOfWork
from telehealth.keys import CAPTURE_LISTENER, MEDIA_STORE, SESSIONMAKER, SETTINGS
from telehealth.records import audit, fhir, measurements
from telehealth.records.errors import InvalidInput
from telehealth.records.mediastore import MediaStore
from telehealth.records.models import AffectedSide, Measurement, MeasurementStatus, Patient, Visit

log = logging.getLogger(__name__)

_MAX_CHANGED_VISITS: Final = 1024
SYSTEM: Final = audit.Actor(None, "system", None)
"""Automatic measuring after a still is stored acts as the system, not as a user."""

Kind = Literal["value", "movement"]
KEY_SERIES: Final[tuple[tuple[str, str, Kind], ...]] = (
    ("rest", "brow_height", "value"),
    ("rest", "palpebral_fissure_height", "value"),
    ("rest", "commissure_height", "value"),
    ("brow_raise", "brow_height", "movement"),
    ("eye_close_gentle", "palpebral_fissure_height", "value"),
    ("smile_open", "commissure_excursion", "movement"),
    ("smile_open", "smile_angle", "value"),
    ("smile_open", "dental_show", "value"),
    ("lower_teeth", "lower_lip_height", "movement"),
)
"""The measurements plotted across a patient's visits: (step, metric, value at the step or movement from rest)."""


def recorded_side(patient: Patient) -> Side | None:
    """The patient's recorded affected side, when it is one side."""
    if patient.affected_side is AffectedSide.LEFT:
        return "left"
    if patient.affected_side is AffectedSide.RIGHT:
        return "right"
    return None


def _pick(stills: Sequence[measurements.MeasuredStill]) -> dict[str, measurements.MeasuredStill]:
    """Per step, the still the visit's numbers use: a measured primary copy (the device's), else any measured copy."""
    picked: dict[str, measurements.MeasuredStill] = {}
    for still in stills:
        m = still.measurement
        if m is None or m.status is not MeasurementStatus.OK or m.landmarks is None:
            continue
        current = picked.get(still.step_id)
        if current is None or (still.media.is_primary and not current.media.is_primary):
            picked[still.step_id] = still
    return picked


def _analyse(
    stills: Sequence[measurements.MeasuredStill], affected: Side | None
) -> tuple[dict[str, uuid.UUID], VisitAnalysis]:
    """The visit computation on the picked stills (pure CPU: run it in a thread)."""
    picked = _pick(stills)
    points = {
        step: measurements.unpack_landmarks(s.measurement.landmarks)
        for step, s in picked.items()
        if s.measurement and s.measurement.landmarks
    }
    return {step: s.media.id for step, s in picked.items()}, analyse_visit(points, affected)


async def measured_steps(db: AsyncSession, visit_id: uuid.UUID) -> list[fhir.MeasuredStep]:
    """A visit's computed numbers per step with the still and model they come from (for the record)."""
    _, patient, stills = await measurements.visit_stills(db, visit_id)
    by_media = {s.media.id: s.measurement for s in stills if s.measurement is not None}
    used, result = await asyncio.to_thread(_analyse, stills, recorded_side(patient))
    out = []
    for step, step_result in result.steps.items():
        m = by_media.get(used[step]) if step in used else None
        if m is not None:
            out.append(fhir.MeasuredStep(step, m.media_id, m.id, m.model, m.model_version, m.code_version, step_result))
    return out


@dataclass(frozen=True, slots=True)
class VisitMeasurements:
    """A visit's stills with their readings and the visit-level numbers computed from them."""

    visit: Visit
    patient: Patient
    stills: list[measurements.MeasuredStill]
    used_media: dict[str, uuid.UUID]
    analysis: VisitAnalysis
    landmarks: dict[uuid.UUID, NDArray[np.float64]]
    """Latest landmarks per measured media file (image pixels), when asked for (the overlay)."""


@dataclass(frozen=True, slots=True)
class TrendPoint:
    """One visit's value of one key measurement."""

    visit_id: uuid.UUID
    scheduled_at: datetime
    right: float
    left: float
    asymmetry_pct: float | None


@dataclass(frozen=True, slots=True)
class TrendSeries:
    """One key measurement across a patient's visits."""

    step_id: str
    metric: str
    kind: Kind
    points: list[TrendPoint]


@dataclass(frozen=True, slots=True)
class PatientTrend:
    """A patient's key measurements and eFACE-style items over time."""

    patient: Patient
    series: list[TrendSeries]
    visits: list[tuple[Visit, VisitAnalysis]]


def _trend(patient: Patient, visits: list[tuple[Visit, VisitAnalysis]]) -> PatientTrend:
    series = []
    for step, metric, kind in KEY_SERIES:
        points = []
        for visit, result in visits:
            res = result.steps.get(step)
            if res is None:
                continue
            values = res.metrics if kind == "value" else res.movement
            asym = res.asymmetry_pct if kind == "value" else res.movement_asymmetry_pct
            if values is None or asym is None or metric not in values:
                continue
            v = values[metric]
            points.append(TrendPoint(visit.id, visit.scheduled_at, v["right"], v["left"], asym.get(metric)))
        series.append(TrendSeries(step, metric, kind, points))
    return PatientTrend(patient, series, visits)


class AnalysisService:
    """Measures stored stills in a process pool and stores each reading; computes visits' numbers."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        store: MediaStore,
        *,
        workers: int = 1,
        queue_size: int = 256,
        warm: bool = True,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._store = store
        self.pool = LandmarkPool(workers=workers, max_pending=2 * workers)
        self._queue: asyncio.Queue[uuid.UUID] = asyncio.Queue(queue_size)
        self._consumers: list[asyncio.Task[None]] = []
        self._warm = warm
        self._warm_task: asyncio.Task[list[int]] | None = None
        self._model_version = model_version()
        # Visits whose capture changed: one owned task finds their unmeasured stills (bounded set).
        self._changed: set[uuid.UUID] = set()
        self._wake = asyncio.Event()
        self._queued: set[uuid.UUID] = set()
        self._scanner: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the consumers of the queue, and (``warm``) the workers in the background.

        Loading the model takes seconds per worker: warming in the background keeps the app's
        startup fast while the first still is not delayed; without ``warm`` (tests that do not
        measure) no worker process starts until a still is measured.
        """
        self.pool.start()
        if self._warm:
            self._warm_task = asyncio.create_task(self.pool.warm(), name="analysis-warm")
        self._consumers = [
            asyncio.create_task(self._consume(), name=f"analysis-consumer-{i}") for i in range(self.pool.workers * 2)
        ]
        self._scanner = asyncio.create_task(self._scan(), name="analysis-scanner")

    async def stop(self) -> None:
        """Cancel the consumers (stills still queued stay unmeasured) and stop the workers."""
        tasks = [*self._consumers, *(t for t in (self._warm_task, self._scanner) if t is not None)]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._consumers, self._warm_task, self._scanner = [], None, None
        await self.pool.close()

    def enqueue(self, media_id: uuid.UUID) -> bool:
        """Queue a stored still for measuring; False (logged) when the queue is full, never blocks the caller."""
        try:
            self._queue.put_nowait(media_id)
        except asyncio.QueueFull:
            log.warning("analysis queue full: media %s not measured now", media_id)
            return False
        metrics.set_measurement_queue(self._queue.qsize())
        return True

    async def capture_changed(self, visit_id: uuid.UUID, reason: str) -> None:
        """Capture listener: a still was stored (take or device upload), so measure what is new."""
        if reason not in (CaptureChange.TAKE, CaptureChange.UPLOAD_STORED):
            return
        if len(self._changed) < _MAX_CHANGED_VISITS:
            self._changed.add(visit_id)
            self._wake.set()
        else:
            log.warning("analysis: too many visits waiting; visit %s measured later on request", visit_id)

    async def _scan(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            visits, self._changed = self._changed, set()
            for visit_id in visits:
                try:
                    await self._enqueue_unmeasured(visit_id)
                except Exception:
                    log.exception("analysis: finding the new stills of visit %s failed", visit_id)

    async def _enqueue_unmeasured(self, visit_id: uuid.UUID) -> None:
        # A system read with nothing to show anyone: each reading it leads to is audited when stored.
        async with self._sessionmaker() as db:
            _, _, stills = await measurements.visit_stills(db, visit_id)
        for still in stills:
            if still.measurement is None and still.media.id not in self._queued and self.enqueue(still.media.id):
                self._queued.add(still.media.id)

    async def join(self) -> None:
        """Wait until every queued still has been measured (tests and the archive command)."""
        await self._queue.join()

    async def _consume(self) -> None:
        while True:
            media_id = await self._queue.get()
            try:
                await self.measure_media(media_id)
            except Exception:
                log.exception("measuring media %s failed", media_id)
            finally:
                self._queued.discard(media_id)
                self._queue.task_done()
                metrics.set_measurement_queue(self._queue.qsize())

    async def measure_media(self, media_id: uuid.UUID) -> Measurement:
        """Measure one stored still and store the reading as a new row (a still without a face is flagged)."""
        start = time.perf_counter()
        # A read of the media row for the system, nothing to audit: the stored reading is audited below.
        async with self._sessionmaker() as db:
            media = await measurements.get_media(db, media_id)
            visit = await db.get(Visit, media.visit_id)
        if not measurements.is_still(media):
            raise InvalidInput("only stills can be measured")
        data = await self._store.read(media.storage_key)
        result = await self.pool.measure(data)
        found = result.detection
        reading = measurements.Reading(
            status=MeasurementStatus(found.status),
            model=MODEL,
            model_version=self._model_version,
            code_version=CODE_VERSION,
            width=found.width or None,
            height=found.height or None,
            landmarks=found.landmarks,
            metrics=result.summary,
            error=found.error,
            decode_ms=found.decode_ms,
            detect_ms=found.detect_ms,
            total_ms=(time.perf_counter() - start) * 1000.0,
        )
        async with UnitOfWork(self._sessionmaker, SYSTEM) as uow:
            row = measurements.add(uow.db, media, reading)
            await uow.db.flush()
            uow.audit(
                "measure_media",
                object_type="media",
                object_id=media.id,
                patient_id=visit.patient_id if visit else None,
                detail={
                    "status": reading.status.value,
                    "measurement_id": str(row.id),
                    "model_version": self._model_version,
                },
            )
        metrics.observe_measurement(reading.total_ms / 1000.0)
        log.info("measured media %s: %s in %.0f ms", media.id, reading.status.value, reading.total_ms)
        return row

    async def visit_measurements(
        self, visit_id: uuid.UUID, actor: audit.Actor, *, with_landmarks: bool = False
    ) -> VisitMeasurements:
        """A visit's stills, readings and computed numbers (audited as a view of the patient's record)."""
        async with UnitOfWork(self._sessionmaker, actor) as uow:
            visit, patient, stills = await measurements.visit_stills(uow.db, visit_id)
            uow.audit("view_measurements", object_type="visit", object_id=visit.id, patient_id=patient.id)

        def compute() -> tuple[dict[str, uuid.UUID], VisitAnalysis, dict[uuid.UUID, NDArray[np.float64]]]:
            used, result = _analyse(stills, recorded_side(patient))
            points = {
                s.media.id: measurements.unpack_landmarks(s.measurement.landmarks)
                for s in stills
                if with_landmarks and s.measurement is not None and s.measurement.landmarks is not None
            }
            return used, result, points

        used, result, points = await asyncio.to_thread(compute)
        return VisitMeasurements(visit, patient, stills, used, result, points)

    async def patient_trend(self, patient_id: uuid.UUID, actor: audit.Actor) -> PatientTrend:
        """A patient's key measurements across all visits (audited)."""
        async with UnitOfWork(self._sessionmaker, actor) as uow:
            patient, visits = await measurements.patient_stills(uow.db, patient_id)
            uow.audit("view_measurement_trend", object_type="patient", object_id=patient.id, patient_id=patient.id)
        side = recorded_side(patient)

        def compute() -> list[tuple[Visit, VisitAnalysis]]:
            return [(visit, _analyse(stills, side)[1]) for visit, stills in visits if stills]

        return _trend(patient, await asyncio.to_thread(compute))


ANALYSIS: web.AppKey[AnalysisService] = web.AppKey("analysis")


async def analysis_context(app: web.Application) -> AsyncIterator[None]:
    """The cleanup_ctx entry, after the database's: the service starts after it and stops before it.

    With ``measure_on_capture`` the service also listens to capture changes, beside the listener
    already installed (the clinician's live panel), and measures every still as it is stored.
    """
    settings = app[SETTINGS]
    service = AnalysisService(
        app[SESSIONMAKER], app[MEDIA_STORE], workers=settings.analysis_workers, warm=settings.analysis_warm
    )
    await service.start()
    app[ANALYSIS] = service
    if settings.measure_on_capture:
        app[CAPTURE_LISTENER] = FanOutListener(app[CAPTURE_LISTENER], service)
    yield
    await service.stop()
