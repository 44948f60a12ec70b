"""Grading: House-Brackmann, Sunnybrook and eFACE per visit, with every earlier grading kept."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from telehealth.handlers.common import Handler
from telehealth.handlers.uow import Actor
from telehealth.records import accounts, grading, review
from telehealth.records.errors import InvalidStateError
from telehealth.records.grading import GradeInput
from telehealth.records.models import Grade, VisitState


@dataclass(frozen=True, slots=True)
class GradeSheet:
    """A visit's gradings, newest first, with their authors' names and the current one per scale."""

    history: Sequence[Grade]
    author_names: dict[uuid.UUID, str]
    current_ids: frozenset[uuid.UUID]


class GradingHandler(Handler):
    """Scores are computed here from the items, never taken from the client."""

    async def sheet(self, actor: Actor, visit_id: uuid.UUID) -> GradeSheet:
        """A visit's grades (audited)."""
        async with self.work(actor) as uow:
            visit, _, _ = await review.visit_header(uow.db, visit_id)
            history = await grading.grade_history(uow.db, visit_id)
            names = await accounts.display_names(uow.db, (g.created_by for g in history))
            uow.audit("view_grades", object_type="visit", object_id=visit_id, patient_id=visit.patient_id)
        current = frozenset(g.id for g in grading.current_grades(history).values())
        return GradeSheet(history=history, author_names=names, current_ids=current)

    async def grade(
        self, actor: Actor, visit_id: uuid.UUID, entry: GradeInput, *, author_id: uuid.UUID | None
    ) -> tuple[Grade, str]:
        """Record a grading of a visit that was not cancelled; returns it with its author's name."""
        async with self.work(actor) as uow:
            visit, _, _ = await review.visit_header(uow.db, visit_id)
            if visit.state in (VisitState.CANCELLED, VisitState.NO_SHOW):
                raise InvalidStateError("a cancelled visit cannot be graded")
            author = await accounts.get_user(uow.db, author_id)
            grade = await grading.save_grade(uow.db, visit_id=visit_id, grading=entry, author=author.id)
            uow.audit(
                "grade_visit",
                object_type="visit",
                object_id=visit_id,
                patient_id=visit.patient_id,
                detail={"scale": grade.scale.value, "grade_id": str(grade.id)},
            )
        return grade, author.display_name
