"""Facial nerve grading: House-Brackmann, Sunnybrook and eFACE, validated and scored here.

Scoring rules (the single place they live; the web client only displays what this computes):

- House-Brackmann (House & Brackmann, Otolaryngol Head Neck Surg 1985): one grade I-VI, stored as 1-6.
- Sunnybrook Facial Grading System (Ross, Fradet & Nedzelski, Otolaryngol Head Neck Surg 1996):
  resting symmetry = (eye 0-1 + cheek 0-2 + mouth 0-1) x 5 (0-20);
  voluntary movement = sum of 5 expressions each 1-5, x 4 (20-100);
  synkinesis = sum of the same 5 expressions each 0-3 (0-15);
  composite = voluntary - resting - synkinesis (-35..100).
- eFACE (Banks, Bhama, Park, Hadlock & Hadlock, Plast Reconstr Surg 2015;136(2):223e-230e):
  15 items each 0-100 where 100 is normal, in three domains (4 static, 7 dynamic, 4 synkinesis).
  Rule used here: each domain score is the arithmetic mean of its items and the total is the
  arithmetic mean of all 15 items (not the mean of the three domain scores), every score rounded to
  one decimal. Items are entered already normalised to 0-100: the bidirectional static items the
  paper scores on a 0-200 slider are folded to 100 - |100 - x| by the grader before entry.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.records.models import Grade, GradingScale

ROMAN = ("I", "II", "III", "IV", "V", "VI")

# Strict: a string "3", a float 3.0 or a boolean is an input error, not silently coerced.
_STRICT = ConfigDict(extra="forbid", strict=True, frozen=True)


Score0to1 = Annotated[int, Field(ge=0, le=1)]
Score0to2 = Annotated[int, Field(ge=0, le=2)]
Score0to3 = Annotated[int, Field(ge=0, le=3)]
Score1to5 = Annotated[int, Field(ge=1, le=5)]
Score1to6 = Annotated[int, Field(ge=1, le=6)]
Score0to100 = Annotated[int, Field(ge=0, le=100)]


class HouseBrackmannItems(BaseModel):
    """House-Brackmann: a single grade, 1 (normal) to 6 (total paralysis)."""

    model_config = _STRICT
    grade: Score1to6


class SunnybrookResting(BaseModel):
    """Resting symmetry compared with the normal side."""

    model_config = _STRICT
    eye: Score0to1
    cheek: Score0to2
    mouth: Score0to1


class SunnybrookExpressions(BaseModel):
    """The five standard expressions, each scored on the caller's range."""

    model_config = _STRICT
    brow_lift: int
    gentle_eye_closure: int
    open_mouth_smile: int
    snarl: int
    lip_pucker: int

    def total(self) -> int:
        """Sum of the five expressions."""
        return self.brow_lift + self.gentle_eye_closure + self.open_mouth_smile + self.snarl + self.lip_pucker


class SunnybrookVoluntary(SunnybrookExpressions):
    """Degree of excursion, 1 (no movement) to 5 (complete movement)."""

    brow_lift: Score1to5
    gentle_eye_closure: Score1to5
    open_mouth_smile: Score1to5
    snarl: Score1to5
    lip_pucker: Score1to5


class SunnybrookSynkinesis(SunnybrookExpressions):
    """Involuntary co-contraction, 0 (none) to 3 (severe)."""

    brow_lift: Score0to3
    gentle_eye_closure: Score0to3
    open_mouth_smile: Score0to3
    snarl: Score0to3
    lip_pucker: Score0to3


class SunnybrookItems(BaseModel):
    """The full Sunnybrook form."""

    model_config = _STRICT
    resting: SunnybrookResting
    voluntary: SunnybrookVoluntary
    synkinesis: SunnybrookSynkinesis


class EFaceItems(BaseModel):
    """The 15 eFACE items, each 0-100 with 100 = normal."""

    model_config = _STRICT
    # static
    resting_brow: Score0to100
    palpebral_fissure: Score0to100
    nasolabial_fold: Score0to100
    oral_commissure: Score0to100
    # dynamic
    brow_elevation: Score0to100
    gentle_eye_closure: Score0to100
    full_eye_closure: Score0to100
    oral_commissure_smile: Score0to100
    nasolabial_fold_depth_smile: Score0to100
    nasolabial_fold_orientation_smile: Score0to100
    lower_lip_eee: Score0to100
    # synkinesis
    ocular_synkinesis: Score0to100
    midfacial_synkinesis: Score0to100
    mentalis_synkinesis: Score0to100
    platysmal_synkinesis: Score0to100


EFACE_DOMAINS: dict[str, tuple[str, ...]] = {
    "static": ("resting_brow", "palpebral_fissure", "nasolabial_fold", "oral_commissure"),
    "dynamic": (
        "brow_elevation",
        "gentle_eye_closure",
        "full_eye_closure",
        "oral_commissure_smile",
        "nasolabial_fold_depth_smile",
        "nasolabial_fold_orientation_smile",
        "lower_lip_eee",
    ),
    "synkinesis": ("ocular_synkinesis", "midfacial_synkinesis", "mentalis_synkinesis", "platysmal_synkinesis"),
}


class HouseBrackmannIn(BaseModel):
    """A House-Brackmann grading as submitted."""

    model_config = _STRICT
    scale: Literal["house_brackmann"]
    items: HouseBrackmannItems


class SunnybrookIn(BaseModel):
    """A Sunnybrook grading as submitted."""

    model_config = _STRICT
    scale: Literal["sunnybrook"]
    items: SunnybrookItems


class EFaceIn(BaseModel):
    """An eFACE grading as submitted."""

    model_config = _STRICT
    scale: Literal["eface"]
    items: EFaceItems


GradeInput = Annotated[HouseBrackmannIn | SunnybrookIn | EFaceIn, Field(discriminator="scale")]


def house_brackmann_scores(items: HouseBrackmannItems) -> dict[str, Any]:
    """The grade and its Roman numeral."""
    return {"grade": items.grade, "label": ROMAN[items.grade - 1]}


def sunnybrook_scores(items: SunnybrookItems) -> dict[str, Any]:
    """Resting, voluntary, synkinesis and composite scores (Ross 1996)."""
    r = items.resting
    resting = (r.eye + r.cheek + r.mouth) * 5
    voluntary = items.voluntary.total() * 4
    synkinesis = items.synkinesis.total()
    return {
        "resting": resting,
        "voluntary": voluntary,
        "synkinesis": synkinesis,
        "composite": voluntary - resting - synkinesis,
    }


def _mean(values: Sequence[int]) -> float:
    return round(sum(values) / len(values), 1)


def eface_scores(items: EFaceItems) -> dict[str, Any]:
    """Domain means and the total as the mean of all items (see the module docstring)."""
    values = items.model_dump()
    out: dict[str, Any] = {name: _mean([values[k] for k in keys]) for name, keys in EFACE_DOMAINS.items()}
    out["total"] = _mean([values[k] for keys in EFACE_DOMAINS.values() for k in keys])
    return out


def score(grading: HouseBrackmannIn | SunnybrookIn | EFaceIn) -> dict[str, Any]:
    """The computed scores of a validated grading."""
    if isinstance(grading, HouseBrackmannIn):
        return house_brackmann_scores(grading.items)
    if isinstance(grading, SunnybrookIn):
        return sunnybrook_scores(grading.items)
    return eface_scores(grading.items)


async def save_grade(
    db: AsyncSession,
    *,
    visit_id: uuid.UUID,
    grading: HouseBrackmannIn | SunnybrookIn | EFaceIn,
    author: uuid.UUID,
) -> Grade:
    """Record a new grading; earlier ones stay as history."""
    grade = Grade(
        visit_id=visit_id,
        scale=GradingScale(grading.scale),
        items=grading.items.model_dump(),
        scores=score(grading),
        created_by=author,
    )
    db.add(grade)
    await db.flush()
    return grade


async def grade_history(db: AsyncSession, visit_id: uuid.UUID) -> Sequence[Grade]:
    """Every grading of a visit, newest first."""
    stmt = select(Grade).where(Grade.visit_id == visit_id).order_by(Grade.created_at.desc(), Grade.id)
    return (await db.scalars(stmt)).all()


def current_grades(history: Sequence[Grade]) -> dict[GradingScale, Grade]:
    """The newest grading per scale from a newest-first history."""
    current: dict[GradingScale, Grade] = {}
    for g in history:
        current.setdefault(g.scale, g)
    return current
