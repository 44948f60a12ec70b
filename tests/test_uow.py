"""The unit of work commits a change only together with its audit event."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from telehealth.handlers.uow import Event, UnauditedChange, UnitOfWork, reading, record_refusal
from telehealth.records import audit
from telehealth.records.models import AffectedSide, AuditEvent, Patient

ACTOR = audit.Actor("someone", "clinician", "127.0.0.1")


def _patient(mrn: str) -> Patient:
    return Patient(
        mrn=mrn, given_name="Ada", family_name="Test", birth_date=date(1970, 1, 1), affected_side=AffectedSide.LEFT
    )


async def _counts(db: async_sessionmaker[AsyncSession]) -> tuple[int, int]:
    async with db() as s:
        patients = await s.scalar(select(func.count()).select_from(Patient))
        events = await s.scalar(select(func.count()).select_from(AuditEvent))
    return int(patients or 0), int(events or 0)


async def test_a_change_commits_with_its_audit_event(db: async_sessionmaker[AsyncSession]) -> None:
    async with UnitOfWork(db, ACTOR) as uow:
        uow.db.add(_patient("MRN-1"))
        uow.audit("create_patient", object_type="patient")
    assert await _counts(db) == (1, 1)


async def test_a_change_without_an_audit_event_is_refused_and_rolled_back(
    db: async_sessionmaker[AsyncSession],
) -> None:
    with pytest.raises(UnauditedChange):
        async with UnitOfWork(db, ACTOR) as uow:
            uow.db.add(_patient("MRN-2"))
    assert await _counts(db) == (0, 0)


async def test_an_error_rolls_back_the_change_and_its_audit_event(db: async_sessionmaker[AsyncSession]) -> None:
    with pytest.raises(ValueError):
        async with UnitOfWork(db, ACTOR) as uow:
            uow.db.add(_patient("MRN-3"))
            uow.audit("create_patient", object_type="patient")
            await uow.db.flush()
            raise ValueError("rule broken")
    assert await _counts(db) == (0, 0)


async def test_a_refusal_is_audited_on_its_own(db: async_sessionmaker[AsyncSession]) -> None:
    await record_refusal(db, ACTOR, Event("access_denied", outcome="denied", detail={"reason": "role"}))
    async with db() as s:
        event = await s.scalar(select(AuditEvent))
    assert event is not None and (event.action, event.outcome, event.actor_role) == (
        "access_denied",
        "denied",
        "clinician",
    )


async def test_a_discarded_unit_leaves_neither_change_nor_audit_event(db: async_sessionmaker[AsyncSession]) -> None:
    async with UnitOfWork(db, ACTOR) as uow:
        uow.db.add(_patient("MRN-4"))
        uow.discard()
    assert await _counts(db) == (0, 0)


async def test_a_read_never_commits_what_it_touched(db: async_sessionmaker[AsyncSession]) -> None:
    async with reading(db) as s:
        s.add(_patient("MRN-5"))
        await s.flush()
    assert await _counts(db) == (0, 0)
