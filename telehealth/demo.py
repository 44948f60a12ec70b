"""Seed a demo clinic once, and hand out a fresh patient link on every start."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from telehealth.records import visits
from telehealth.records.accounts import create_user
from telehealth.records.models import AffectedSide, Patient, Role, User, Visit, VisitState
from telehealth.records.patients import create_patient
from telehealth.records.types import utcnow

DEMO_MRN = "DEMO-0001"


@dataclass(frozen=True)
class DemoInfo:
    """What the person starting the server needs to try it."""

    logins: dict[str, str]
    visit_id: str
    join_path: str


def _credentials_file(var_dir: Path) -> Path:
    return var_dir / "demo-logins.json"


async def ensure_demo(sessionmaker: async_sessionmaker[AsyncSession], var_dir: Path, *, valid_hours: int) -> DemoInfo:
    """Create the demo users, patient and today's visit if missing; issue a new join link."""
    cred_file = _credentials_file(var_dir)
    async with sessionmaker() as db, db.begin():
        logins: dict[str, str]
        if await db.scalar(select(User).where(User.username == "clinician")) is None:
            logins = {name: secrets.token_urlsafe(9) for name in ("admin", "clinician", "reviewer")}
            await create_user(db, "admin", "Clinic Admin", Role.ADMIN, logins["admin"])
            await create_user(db, "clinician", "Dr. Ada Clinician", Role.CLINICIAN, logins["clinician"])
            await create_user(db, "reviewer", "Dr. Rui Reviewer", Role.REVIEWER, logins["reviewer"])
            fd = os.open(cred_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(logins, f)
        else:
            logins = json.loads(cred_file.read_text()) if cred_file.exists() else {}
        clinician = await db.scalar(select(User).where(User.username == "clinician"))
        assert clinician is not None
        patient = await db.scalar(select(Patient).where(Patient.mrn == DEMO_MRN))
        if patient is None:
            patient = await create_patient(
                db,
                mrn=DEMO_MRN,
                given_name="Sam",
                family_name="Demo",
                birth_date=date(1980, 5, 17),
                affected_side=AffectedSide.LEFT,
                created_by=clinician.id,
            )
        now = utcnow()
        visit = await db.scalar(
            select(Visit)
            .where(
                Visit.patient_id == patient.id,
                Visit.scheduled_at >= now - timedelta(hours=12),
                Visit.state.in_([VisitState.SCHEDULED, VisitState.WAITING, VisitState.IN_CALL]),
            )
            .order_by(Visit.scheduled_at.desc())
        )
        if visit is None:
            visit = await visits.schedule_visit(
                db,
                patient_id=patient.id,
                clinician_id=clinician.id,
                scheduled_at=now + timedelta(minutes=5),
                reason="Demo: facial nerve follow-up",
            )
        token = visits.issue_join_link(visit, valid_hours=valid_hours)
    return DemoInfo(logins=logins, visit_id=str(visit.id), join_path=f"/join/{token}")
