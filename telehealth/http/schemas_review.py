"""Request and response bodies of the review, grading, media and export API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, RootModel, StringConstraints

from telehealth.http.schemas import In
from telehealth.records.grading import GradeInput
from telehealth.records.models import Grade, GradingScale
from telehealth.records.review import NoteOut


class NoteIn(In):
    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class NoteList(BaseModel):
    items: list[NoteOut]


class GradeIn(RootModel[GradeInput]):
    """One grading: {"scale": "house_brackmann" | "sunnybrook" | "eface", "items": {...}}."""


class GradeOut(BaseModel):
    id: uuid.UUID
    scale: GradingScale
    items: dict[str, Any]
    scores: dict[str, Any]
    created_at: datetime
    author_id: uuid.UUID
    author_name: str

    @classmethod
    def of(cls, g: Grade, author_name: str) -> GradeOut:
        """Serialize a grade row."""
        return cls(
            id=g.id,
            scale=g.scale,
            items=g.items,
            scores=g.scores,
            created_at=g.created_at,
            author_id=g.created_by,
            author_name=author_name,
        )


class GradesOut(BaseModel):
    current: list[GradeOut]
    history: list[GradeOut]


class MediaQuery(In):
    download: bool = False
