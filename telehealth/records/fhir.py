"""A visit as a FHIR R4 Bundle for the hospital record (Media, DiagnosticReport, Observations)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.analysis.metrics import METRIC_UNITS, SIDES
from telehealth.analysis.visit import StepResult
from telehealth.records.captures import StepInfo, current_takes, step_sequence
from telehealth.records.errors import Conflict, RecordNotFound
from telehealth.records.grading import current_grades, grade_history
from telehealth.records.mediastore import MediaStore
from telehealth.records.models import (
    Capture,
    CaptureKind,
    Grade,
    GradingScale,
    MediaFile,
    Patient,
    User,
    Visit,
    VisitState,
)
from telehealth.records.quality import read_quality
from telehealth.records.review import media_url, visit_header
from telehealth.records.types import utcnow

# The product's own code systems. `.invalid` marks them as placeholders: a hospital integration
# replaces them with the URIs registered for that site.
_CS = "https://facial-capture.invalid/fhir/CodeSystem"
PROTOCOL_STEP_SYSTEM = f"{_CS}/protocol-step"
PROVENANCE_SYSTEM = f"{_CS}/media-provenance"
GRADE_SYSTEM = f"{_CS}/facial-grading"
REPORT_SYSTEM = f"{_CS}/report"
MEASUREMENT_SYSTEM = f"{_CS}/facial-measurement"
METHOD_SYSTEM = f"{_CS}/measurement-method"
UCUM = "http://unitsofmeasure.org"
DECISION_SUPPORT = "Computed from landmarks — decision support, not a diagnosis."
MRN_SYSTEM = "https://facial-capture.invalid/fhir/NamingSystem/mrn"
MEDIA_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/media-type"
SNOMED = "http://snomed.info/sct"
FACE_STRUCTURE = "89545001"  # SNOMED CT: Face structure (body structure)
_CHUNK = 1024 * 1024

_ENCOUNTER_STATUS = {
    VisitState.SCHEDULED: "planned",
    VisitState.WAITING: "arrived",
    VisitState.IN_CALL: "in-progress",
    VisitState.ENDED: "finished",
    VisitState.CANCELLED: "cancelled",
    VisitState.NO_SHOW: "cancelled",  # FHIR R4 Encounter has no no-show status
}
_GRADE_NAMES = {
    GradingScale.HOUSE_BRACKMANN: "House-Brackmann facial nerve grade",
    GradingScale.SUNNYBROOK: "Sunnybrook facial grading system composite score",
    GradingScale.EFACE: "eFACE facial function total score",
}


@dataclass(frozen=True, slots=True)
class MeasuredStep:
    """A step's computed numbers for the record: the still they come from and the model that read it."""

    step_id: str
    media_id: uuid.UUID
    measurement_id: uuid.UUID
    model: str
    model_version: str
    code_version: str
    result: StepResult


def _ref(resource_id: uuid.UUID | str) -> dict[str, str]:
    return {"reference": f"urn:uuid:{resource_id}"}


def _coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    out = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def _instant(value: datetime) -> str:
    return value.isoformat()


@dataclass(frozen=True)
class _Hashes:
    sha1_b64: str
    sha256: str


def _hash_file(path: Path) -> _Hashes:
    """SHA-1 (what FHIR Attachment.hash carries) and SHA-256 (our key) in one pass."""
    s1, s256 = hashlib.sha1(usedforsecurity=False), hashlib.sha256()
    try:
        with path.open("rb") as f:
            while chunk := f.read(_CHUNK):
                s1.update(chunk)
                s256.update(chunk)
    except FileNotFoundError as exc:
        raise RecordNotFound("a media file of this visit is missing from the store") from exc
    return _Hashes(base64.b64encode(s1.digest()).decode("ascii"), s256.hexdigest())


async def _verified_hashes(store: MediaStore, media: MediaFile) -> _Hashes:
    """Hash the stored bytes off the event loop; a file that no longer matches its record is refused."""
    hashes = await asyncio.to_thread(_hash_file, store.local_path(media.storage_key))
    if hashes.sha256 != media.sha256:
        raise Conflict(f"media {media.id} failed its integrity check and cannot be exported")
    return hashes


def _export_file(files: Sequence[MediaFile]) -> MediaFile | None:
    """The one file that represents a take: its primary original, else its first original."""
    originals = [m for m in files if not m.is_thumbnail]
    primaries = [m for m in originals if m.is_primary]
    return primaries[0] if primaries else (originals[0] if originals else None)


def _known_user(users: dict[uuid.UUID, User], user_id: uuid.UUID | None, fallback: uuid.UUID) -> uuid.UUID:
    return user_id if user_id is not None and user_id in users else fallback


async def fhir_bundle(
    db: AsyncSession,
    store: MediaStore,
    visit_id: uuid.UUID,
    *,
    base_url: str,
    steps: Sequence[StepInfo],
    measured: Sequence[MeasuredStep] = (),
) -> dict[str, Any]:
    """A FHIR R4 collection Bundle for one visit (capture-protocol.md, "Attaching to the record").

    ``steps`` are the visit protocol's steps: Media follow their order and carry their labels.
    ``measured`` are the face measurements computed from the visit's stills: one Observation per
    measurement and side, and one per asymmetry, each derived from the Media of its still.
    """
    visit, patient, _ = await visit_header(db, visit_id)
    takes = current_takes(await db.scalars(select(Capture).where(Capture.visit_id == visit_id)))
    media_rows = (await db.scalars(select(MediaFile).where(MediaFile.visit_id == visit_id))).all()
    by_capture: dict[uuid.UUID, list[MediaFile]] = {}
    for m in sorted(media_rows, key=lambda m: (m.created_at, str(m.id))):
        if m.capture_id is not None:
            by_capture.setdefault(m.capture_id, []).append(m)
    grades = current_grades(await grade_history(db, visit_id))
    people = {visit.clinician_id, *(g.created_by for g in grades.values())}
    people |= {c.created_by for c, _ in takes.values() if c.created_by is not None}
    users = {u.id: u for u in await db.scalars(select(User).where(User.id.in_(people)))}

    entries: list[dict[str, Any]] = [_patient(patient), _encounter(visit)]
    entries += [_practitioner(u) for u in users.values()]
    media_entries: list[tuple[str, dict[str, Any]]] = []
    still_media: dict[str, str] = {}
    labels = {s.id: s.label for s in steps}
    for step in step_sequence(steps, (step for (_, step, _) in takes)):
        for kind in (CaptureKind.STILL, CaptureKind.CLIP):
            found = takes.get((visit_id, step.id, kind))
            if found is None:
                continue
            capture = found[0]
            media = _export_file(by_capture.get(capture.id, []))
            if media is None:
                continue
            hashes = await _verified_hashes(store, media)
            operator = _known_user(users, capture.created_by, visit.clinician_id)
            resource = _media(media, capture, step.label, visit, operator, hashes, base_url)
            media_entries.append((f"{step.label} ({kind.value})", resource))
            if kind is CaptureKind.STILL:
                still_media[step.id] = resource["id"]
    entries += [r for _, r in media_entries]
    media_refs = [_ref(r["id"]) for _, r in media_entries]
    observations = [_observation(g, visit, media_refs) for g in grades.values()]
    for ms in measured:
        # The measured copy is the one exported when it is the take's primary file; else the take's Media.
        media_id = str(ms.media_id) if str(ms.media_id) in still_media.values() else still_media.get(ms.step_id)
        if media_id is not None:
            observations += _measurement_observations(ms, labels.get(ms.step_id, ms.step_id), visit, media_id)
    entries += observations
    entries.append(_report(visit, media_entries, observations))
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "type": "collection",
        "timestamp": _instant(utcnow()),
        "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in entries],
    }


def _patient(p: Patient) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": str(p.id),
        "identifier": [{"system": MRN_SYSTEM, "value": p.mrn}],
        "name": [{"family": p.family_name, "given": [p.given_name]}],
        "birthDate": p.birth_date.isoformat(),
    }


def _practitioner(u: User) -> dict[str, Any]:
    return {"resourceType": "Practitioner", "id": str(u.id), "name": [{"text": u.display_name}]}


def _encounter(v: Visit) -> dict[str, Any]:
    period = {"start": _instant(v.started_at or v.scheduled_at)}
    if v.ended_at is not None:
        period["end"] = _instant(v.ended_at)
    return {
        "resourceType": "Encounter",
        "id": str(v.id),
        "status": _ENCOUNTER_STATUS[v.state],
        "class": {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": "VR",
            "display": "virtual",
        },
        "subject": _ref(v.patient_id),
        "participant": [{"individual": _ref(v.clinician_id)}],
        "period": period,
    }


def _media(
    m: MediaFile, capture: Capture, label: str, visit: Visit, operator: uuid.UUID, hashes: _Hashes, base_url: str
) -> dict[str, Any]:
    is_video = m.content_type.startswith("video/")
    resource: dict[str, Any] = {
        "resourceType": "Media",
        "id": str(m.id),
        "identifier": [{"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{m.id}"}],
        "status": "completed",
        "type": {
            "coding": [
                {"system": MEDIA_TYPE_SYSTEM, "code": "video" if is_video else "image"},
            ]
        },
        "modality": {"coding": [{"system": PROVENANCE_SYSTEM, "code": m.provenance.value}]},
        "view": {"coding": [_coding(PROTOCOL_STEP_SYSTEM, capture.step_id, label)]},
        "subject": _ref(visit.patient_id),
        "encounter": _ref(visit.id),
        "createdDateTime": _instant(m.created_at),
        "operator": _ref(operator),
        "bodySite": {"coding": [{"system": SNOMED, "code": FACE_STRUCTURE, "display": "Face structure"}]},
        "content": {
            "contentType": m.content_type,
            "url": f"{base_url}{media_url(m.id)}",
            "size": m.size,
            "hash": hashes.sha1_b64,
            "title": f"{capture.step_id}-{capture.kind.value}",
            "creation": _instant(m.created_at),
        },
    }
    for name in ("width", "height", "frames"):
        if (value := getattr(m, name)) is not None and value > 0:
            resource[name] = value
    if m.duration_ms is not None:
        resource["duration"] = m.duration_ms / 1000
    quality = read_quality(capture.quality)
    flags = quality.flags if quality is not None else []
    if flags:
        resource["note"] = [{"text": "Capture quality flags: " + ", ".join(flags)}]
    return resource


def _int_component(code: str, value: int) -> dict[str, Any]:
    return {"code": {"coding": [{"system": GRADE_SYSTEM, "code": code}], "text": code}, "valueInteger": value}


def _score_quantity(value: float) -> dict[str, Any]:
    return {"value": value, "unit": "score", "system": "http://unitsofmeasure.org", "code": "{score}"}


def _observation(g: Grade, visit: Visit, media_refs: list[dict[str, str]]) -> dict[str, Any]:
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "id": str(g.id),
        "status": "final",
        "category": [
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "exam"}]}
        ],
        "code": {
            "coding": [{"system": GRADE_SYSTEM, "code": g.scale.value, "display": _GRADE_NAMES[g.scale]}],
            "text": _GRADE_NAMES[g.scale],
        },
        "subject": _ref(visit.patient_id),
        "encounter": _ref(visit.id),
        "effectiveDateTime": _instant(g.created_at),
        "issued": _instant(g.created_at),
        "performer": [_ref(g.created_by)],
    }
    if media_refs:
        obs["derivedFrom"] = media_refs
    s = g.scores
    if g.scale is GradingScale.HOUSE_BRACKMANN:
        obs["valueInteger"] = s["grade"]
        obs["interpretation"] = [{"text": f"Grade {s['label']}"}]
    elif g.scale is GradingScale.SUNNYBROOK:
        obs["valueInteger"] = s["composite"]
        obs["component"] = [_int_component(k, s[k]) for k in ("resting", "voluntary", "synkinesis")]
    else:
        obs["valueQuantity"] = _score_quantity(s["total"])
        obs["component"] = [
            {"code": {"coding": [_coding(GRADE_SYSTEM, k)], "text": k}, "valueQuantity": _score_quantity(s[k])}
            for k in ("static", "dynamic", "synkinesis")
        ]
    return obs


def _label(name: str) -> str:
    return name.replace("_", " ").capitalize()


def _quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": round(value, 3), "unit": unit, "system": UCUM, "code": unit}


def _measurement_observations(m: MeasuredStep, step_label: str, visit: Visit, media_id: str) -> list[dict[str, Any]]:
    """Per metric of one step: an Observation per side (with its movement from rest) and one for the asymmetry."""
    model = f"{m.model} {m.model_version} (measurement code {m.code_version})"
    base: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "exam"}]}
        ],
        "subject": _ref(visit.patient_id),
        "encounter": _ref(visit.id),
        "effectiveDateTime": _instant(visit.started_at or visit.scheduled_at),
        "derivedFrom": [_ref(media_id)],
        "method": {
            "coding": [{"system": METHOD_SYSTEM, "code": m.model, "version": m.model_version, "display": model}],
            "text": f"Face landmarks: {model}",
        },
        "bodySite": {"coding": [{"system": SNOMED, "code": FACE_STRUCTURE, "display": "Face structure"}]},
        "note": [{"text": DECISION_SUPPORT}],
    }
    r = m.result
    out: list[dict[str, Any]] = []
    for metric, sides in r.metrics.items():
        unit = METRIC_UNITS.get(metric)
        if unit is None:
            continue
        for side in SIDES:
            title = f"{_label(metric)}, subject's {side} side, {step_label}"
            obs = {
                **base,
                "id": str(uuid.uuid5(m.measurement_id, f"{metric}/{side}")),
                "code": {"coding": [_coding(MEASUREMENT_SYSTEM, f"{metric}.{side}", title)], "text": title},
                "valueQuantity": _quantity(sides[side], unit),
                "component": [
                    {
                        "code": {"coding": [_coding(PROTOCOL_STEP_SYSTEM, m.step_id, step_label)], "text": step_label},
                        "valueString": step_label,
                    }
                ],
            }
            if r.movement is not None and metric in r.movement:
                obs["component"].append(
                    {
                        "code": {
                            "coding": [_coding(MEASUREMENT_SYSTEM, "movement-from-rest", "Movement from rest")],
                            "text": "Movement from rest",
                        },
                        "valueQuantity": _quantity(r.movement[metric][side], unit),
                    }
                )
            out.append(obs)
        asym = r.asymmetry_pct.get(metric)
        moved = (r.movement_asymmetry_pct or {}).get(metric)
        if asym is None and moved is None:
            continue  # undefined: the healthy side's value is zero
        title = f"{_label(metric)} asymmetry, {step_label}"
        obs = {
            **base,
            "id": str(uuid.uuid5(m.measurement_id, f"{metric}/asymmetry")),
            "code": {"coding": [_coding(MEASUREMENT_SYSTEM, f"{metric}.asymmetry", title)], "text": title},
        }
        if asym is not None:
            obs["valueQuantity"] = _quantity(asym, "%")
        else:
            obs["dataAbsentReason"] = {"text": "undefined: the healthy side's value is zero"}
        if moved is not None:
            obs["component"] = [
                {
                    "code": {
                        "coding": [_coding(MEASUREMENT_SYSTEM, "movement-asymmetry", "Movement asymmetry")],
                        "text": "Movement asymmetry",
                    },
                    "valueQuantity": _quantity(moved, "%"),
                }
            ]
        out.append(obs)
    return out


def _report(
    visit: Visit, media_entries: list[tuple[str, dict[str, Any]]], observations: list[dict[str, Any]]
) -> dict[str, Any]:
    report: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "id": str(uuid.uuid5(visit.id, "diagnostic-report")),
        "status": "final" if visit.state is VisitState.ENDED else "preliminary",
        "code": {
            "coding": [{"system": REPORT_SYSTEM, "code": "facial-expression-series"}],
            "text": "Standardized facial expression photo and video series",
        },
        "subject": _ref(visit.patient_id),
        "encounter": _ref(visit.id),
        "effectiveDateTime": _instant(visit.started_at or visit.scheduled_at),
        "issued": _instant(utcnow()),
        "performer": [_ref(visit.clinician_id)],
    }
    if observations:
        report["result"] = [_ref(o["id"]) for o in observations]
    if media_entries:
        report["media"] = [{"comment": label, "link": _ref(r["id"])} for label, r in media_entries]
    return report
