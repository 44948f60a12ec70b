"""Erasure of a patient when the law requires it: two admins, two steps, an audit tombstone.

Nothing in normal use deletes media (retakes supersede). Erasure is deliberate and rare: one admin
requests it with a reason (an audited event that lists what would be removed, as counts), and a
*different* admin confirms it within `CONFIRM_WITHIN`. The confirmation deletes the rows in one
transaction that commits with the `erasure_completed` tombstone, then removes the media files no
other row refers to. Refusals (same admin, expired, already done) are audited too.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, timedelta
from typing import Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from telehealth.handlers.uow import Event, UnitOfWork, record_refusal
from telehealth.records import audit
from telehealth.records.erasure import execute_erasure, plan_erasure, remove_files, unreferenced
from telehealth.records.errors import AccessDenied, Conflict, Gone, RecordNotFound
from telehealth.records.mediastore import FileMediaStore
from telehealth.records.models import AuditEvent, Patient
from telehealth.records.types import utcnow

log = logging.getLogger(__name__)

REQUESTED: Final = "erasure_requested"
COMPLETED: Final = "erasure_completed"
CONFIRM_WITHIN: Final = timedelta(days=7)


@dataclass(frozen=True)
class ErasureRequest:
    """An open request: its id (the audit event's) and what it would remove."""

    request_id: int
    patient_id: uuid.UUID
    counts: dict[str, int]


@dataclass(frozen=True)
class ErasureDone:
    """What a confirmed erasure removed."""

    request_id: int
    counts: dict[str, int]
    files_removed: int


async def request_erasure(
    sessionmaker: async_sessionmaker[AsyncSession], admin: audit.Actor, mrn: str, reason: str
) -> ErasureRequest:
    """Step one: record who asks to erase which patient and why; nothing is deleted yet."""
    if admin.role != "admin":
        raise AccessDenied("only an admin may request an erasure")
    if not reason.strip():
        raise Conflict("an erasure needs a reason (the legal basis), recorded in the audit log")
    async with UnitOfWork(sessionmaker, admin) as uow:
        patient = await uow.db.scalar(select(Patient).where(Patient.mrn == mrn.strip()))
        if patient is None:
            raise RecordNotFound("no patient with this MRN")
        plan = await plan_erasure(uow.db, patient.id)
        uow.audit(
            REQUESTED,
            object_type="patient",
            object_id=patient.id,
            patient_id=patient.id,
            detail={"reason": reason.strip()[:500], "counts": plan.counts, "media_files": len(plan.media_keys)},
        )
        await uow.db.flush()
        event = await uow.db.scalar(
            select(AuditEvent).where(AuditEvent.action == REQUESTED, AuditEvent.patient_id == patient.id)
            .order_by(AuditEvent.id.desc())
        )  # fmt: skip
        assert event is not None
        return ErasureRequest(event.id, patient.id, plan.counts)


async def _open_request(db: AsyncSession, request_id: int, admin: audit.Actor) -> AuditEvent:
    """The request event, if it may still be confirmed by this admin (otherwise a DomainError)."""
    event = await db.get(AuditEvent, request_id)
    if event is None or event.action != REQUESTED or event.patient_id is None:
        raise RecordNotFound("no such erasure request")
    if event.actor_id == admin.id:
        raise AccessDenied("a second admin must confirm an erasure")
    done = await db.scalar(
        select(AuditEvent.id).where(AuditEvent.action == COMPLETED, AuditEvent.patient_id == event.patient_id)
    )
    if done is not None:
        raise Conflict("this patient has already been erased")
    at = event.at if event.at.tzinfo else event.at.replace(tzinfo=UTC)  # SQLite returns naive UTC
    if utcnow() - at > CONFIRM_WITHIN:
        raise Gone("the erasure request has expired; request it again")
    return event


async def confirm_erasure(
    sessionmaker: async_sessionmaker[AsyncSession], store: FileMediaStore, admin: audit.Actor, request_id: int
) -> ErasureDone:
    """Step two: a second admin confirms; rows go with the tombstone, then the unshared media files."""
    if admin.role != "admin":
        raise AccessDenied("only an admin may confirm an erasure")
    try:
        async with UnitOfWork(sessionmaker, admin) as uow:
            event = await _open_request(uow.db, request_id, admin)
            patient_id = event.patient_id
            assert patient_id is not None
            plan = await plan_erasure(uow.db, patient_id)
            await execute_erasure(uow.db, plan)
            orphaned = await unreferenced(uow.db, plan.media_keys)
            uow.audit(
                COMPLETED,
                object_type="patient",
                object_id=patient_id,
                patient_id=patient_id,
                detail={"request": request_id, "counts": plan.counts, "media_files": len(orphaned)},
            )
    except (AccessDenied, Conflict, Gone, RecordNotFound) as exc:
        await record_refusal(
            sessionmaker,
            admin,
            Event(COMPLETED, object_type="erasure_request", object_id=str(request_id), outcome="refused",
                  detail={"reason": exc.code}),
        )  # fmt: skip
        raise
    # After the commit: a crash here leaves files without rows, which `telehealth verify` lists as orphans.
    removed = await remove_files(store, orphaned)
    log.info("erasure request %s confirmed: %s rows, %s files removed", request_id, sum(plan.counts.values()), removed)
    return ErasureDone(request_id, plan.counts, removed)
