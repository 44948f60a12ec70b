"""A visit's capture series as steps in protocol order: the one builder the panel and the montage share."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

from telehealth.capture.protocol import ProtocolStep
from telehealth.records.captures import current_takes, step_sequence, superseded_ids
from telehealth.records.models import Capture, CaptureKind, MediaFile

from .schemas import StepOut, TakeOut


def visit_steps(
    protocol_steps: Sequence[ProtocolStep],
    takes: Sequence[Capture],
    media: Mapping[uuid.UUID, Sequence[MediaFile]],
    notes: Mapping[uuid.UUID, int] | None = None,
) -> list[StepOut]:
    """Every protocol step (captured or not) then any other captured step, with current and all takes."""
    notes = notes or {}
    current = {(step, kind): pair for (_, step, kind), pair in current_takes(takes).items()}
    replaced = superseded_ids(takes)
    instructions = {s.id: s.instruction for s in protocol_steps}

    def out(c: Capture, earlier: int = 0) -> TakeOut:
        return TakeOut.of(
            c, media.get(c.id, []), superseded=c.id in replaced, earlier_takes=earlier, notes=notes.get(c.id, 0)
        )

    def now(step: str, kind: CaptureKind) -> TakeOut | None:
        found = current.get((step, kind))
        return out(*found) if found is not None else None

    ordered = sorted(takes, key=lambda c: (c.created_at, str(c.id)))
    return [
        StepOut(
            id=s.id,
            label=s.label,
            instruction=instructions.get(s.id),
            still=now(s.id, CaptureKind.STILL),
            clip=now(s.id, CaptureKind.CLIP),
            takes=[out(c) for c in ordered if c.step_id == s.id],
        )
        for s in step_sequence(protocol_steps, (c.step_id for c in takes))
    ]
