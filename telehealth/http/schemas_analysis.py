"""Response bodies of the face-measurement API (lengths in mm, areas in mm2, angles in degrees)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel

from telehealth.analysis.frame import Scale
from telehealth.analysis.metrics import METRIC_UNITS, SideValues
from telehealth.analysis.visit import StepResult
from telehealth.handlers.analysis import PatientTrend, VisitMeasurements
from telehealth.http.schemas import In
from telehealth.records.measurements import MeasuredStill
from telehealth.records.models import AffectedSide, MeasurementStatus, Provenance


class MeasurementQuery(In):
    landmarks: bool = False  # the overlay needs them; the table does not (about 8 KB per still)


class SidesOut(BaseModel):
    right: float
    left: float


class ScaleOut(BaseModel):
    mm_per_px: float
    iris_diameter_px: float
    ipd_px: float

    @classmethod
    def of(cls, s: Scale) -> ScaleOut:
        """Serialize a scale."""
        return cls(mm_per_px=s.mm_per_px, iris_diameter_px=s.iris_diameter_px, ipd_px=s.ipd_px)


class ReadingOut(BaseModel):
    """One measuring run of a still: status, model, own-scale metrics, timing, optional landmarks."""

    id: uuid.UUID
    status: MeasurementStatus
    model: str
    model_version: str
    code_version: str
    created_at: datetime
    width: int | None
    height: int | None
    summary: dict[str, Any] | None
    error: str | None
    total_ms: float
    landmarks: list[list[float]] | None = None


class StillOut(BaseModel):
    step_id: str
    capture_id: uuid.UUID
    media_id: uuid.UUID
    provenance: Provenance
    is_primary: bool
    measurement: ReadingOut | None

    @classmethod
    def of(cls, s: MeasuredStill, landmarks: NDArray[np.float64] | None) -> StillOut:
        """Serialize a still with its latest reading (landmarks as [x, y] pixels, 0.1 px, when given)."""
        m = s.measurement
        reading = None
        if m is not None:
            points = None
            if landmarks is not None:
                points = [[round(float(x), 1), round(float(y), 1)] for x, y, _ in landmarks]
            reading = ReadingOut(
                id=m.id,
                status=m.status,
                model=m.model,
                model_version=m.model_version,
                code_version=m.code_version,
                created_at=m.created_at,
                width=m.width,
                height=m.height,
                summary=m.metrics,
                error=m.error,
                total_ms=m.total_ms,
                landmarks=points,
            )
        return cls(
            step_id=s.step_id,
            capture_id=s.capture_id,
            media_id=s.media.id,
            provenance=s.media.provenance,
            is_primary=s.media.is_primary,
            measurement=reading,
        )


def _sides(values: dict[str, SideValues]) -> dict[str, SidesOut]:
    return {name: SidesOut(right=v["right"], left=v["left"]) for name, v in values.items()}


class StepOut(BaseModel):
    """One step's still at the visit's (rest) scale; movement only for expressions."""

    media_id: uuid.UUID
    scale: ScaleOut
    pose_deg: dict[str, float]
    metrics: dict[str, SidesOut]
    commissure_height_difference: float
    asymmetry_pct: dict[str, float | None]
    movement: dict[str, SidesOut] | None
    movement_asymmetry_pct: dict[str, float | None] | None

    @classmethod
    def of(cls, media_id: uuid.UUID, r: StepResult) -> StepOut:
        """Serialize a step result."""
        return cls(
            media_id=media_id,
            scale=ScaleOut.of(r.scale),
            pose_deg=dict(r.pose_deg),
            metrics=_sides(r.metrics),
            commissure_height_difference=r.commissure_height_difference,
            asymmetry_pct=r.asymmetry_pct,
            movement=_sides(r.movement) if r.movement is not None else None,
            movement_asymmetry_pct=r.movement_asymmetry_pct,
        )


class EfaceItemOut(BaseModel):
    value: float
    basis: str
    computed: Literal[True] = True  # decision support: the form marks it and lets the clinician edit it


class VisitMeasurementsOut(BaseModel):
    """A visit's stills with their readings, and the visit's numbers computed from the best copy per step."""

    visit_id: uuid.UUID
    patient_id: uuid.UUID
    recorded_affected_side: AffectedSide
    affected_side: Literal["right", "left"] | None
    affected_side_source: Literal["recorded", "inferred"] | None
    units: dict[str, str]
    scale: ScaleOut | None
    stills: list[StillOut]
    steps: dict[str, StepOut]
    eface: dict[str, EfaceItemOut]

    @classmethod
    def of(cls, v: VisitMeasurements) -> VisitMeasurementsOut:
        """Serialize a visit's measurements."""
        a = v.analysis
        return cls(
            visit_id=v.visit.id,
            patient_id=v.patient.id,
            recorded_affected_side=v.patient.affected_side,
            affected_side=a.affected,
            affected_side_source=a.affected_source,
            units=dict(METRIC_UNITS),
            scale=ScaleOut.of(a.scale) if a.scale else None,
            stills=[StillOut.of(s, v.landmarks.get(s.media.id)) for s in v.stills],
            steps={step: StepOut.of(v.used_media[step], r) for step, r in a.steps.items()},
            eface={k: EfaceItemOut(value=i.value, basis=i.basis) for k, i in a.eface.items()},
        )


class TrendPointOut(BaseModel):
    visit_id: uuid.UUID
    scheduled_at: datetime
    right: float
    left: float
    asymmetry_pct: float | None


class TrendSeriesOut(BaseModel):
    step_id: str
    metric: str
    kind: Literal["value", "movement"]
    unit: str
    points: list[TrendPointOut]


class EfaceVisitOut(BaseModel):
    visit_id: uuid.UUID
    scheduled_at: datetime
    items: dict[str, EfaceItemOut]


class TrendOut(BaseModel):
    """Key measurements of a patient across visits, oldest visit first."""

    patient_id: uuid.UUID
    recorded_affected_side: AffectedSide
    series: list[TrendSeriesOut]
    eface: list[EfaceVisitOut]

    @classmethod
    def of(cls, t: PatientTrend) -> TrendOut:
        """Serialize a patient's trend."""
        return cls(
            patient_id=t.patient.id,
            recorded_affected_side=t.patient.affected_side,
            series=[
                TrendSeriesOut(
                    step_id=s.step_id,
                    metric=s.metric,
                    kind=s.kind,
                    unit=METRIC_UNITS[s.metric],
                    points=[
                        TrendPointOut(
                            visit_id=p.visit_id,
                            scheduled_at=p.scheduled_at,
                            right=p.right,
                            left=p.left,
                            asymmetry_pct=p.asymmetry_pct,
                        )
                        for p in s.points
                    ],
                )
                for s in t.series
            ],
            eface=[
                EfaceVisitOut(
                    visit_id=visit.id,
                    scheduled_at=visit.scheduled_at,
                    items={k: EfaceItemOut(value=i.value, basis=i.basis) for k, i in a.eface.items()},
                )
                for visit, a in t.visits
            ],
        )
