"""Notes on captures: any staff member reviewing a visit may read and add them."""

from __future__ import annotations

import uuid

from telehealth.handlers.common import Handler
from telehealth.handlers.uow import Actor
from telehealth.records import accounts, review
from telehealth.records.review import NoteOut


class NotesHandler(Handler):
    """Notes belong to one capture of one visit; another visit's capture is simply not found."""

    async def list(self, actor: Actor, visit_id: uuid.UUID, capture_id: uuid.UUID) -> list[NoteOut]:
        """Notes of a capture, oldest first (audited)."""
        async with self.work(actor) as uow:
            _, visit = await review.capture_in_visit(uow.db, visit_id, capture_id)
            items = await review.notes(uow.db, capture_id)
            uow.audit("view_notes", object_type="capture", object_id=capture_id, patient_id=visit.patient_id)
        return items

    async def add(
        self, actor: Actor, visit_id: uuid.UUID, capture_id: uuid.UUID, text: str, *, author_id: uuid.UUID | None
    ) -> NoteOut:
        """Append a note by this author."""
        async with self.work(actor) as uow:
            capture, visit = await review.capture_in_visit(uow.db, visit_id, capture_id)
            author = await accounts.get_user(uow.db, author_id)
            note = await review.add_note(uow.db, capture, text, author)
            uow.audit("add_note", object_type="capture", object_id=capture_id, patient_id=visit.patient_id)
        return note
