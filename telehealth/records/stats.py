"""Whole-database figures for monitoring: visits by state, media recorded (no patient data)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.records.models import MediaFile, Visit, VisitState


async def visits_by_state(db: AsyncSession) -> dict[VisitState, int]:
    """How many visits are in each state (every state present, zero when none)."""
    rows = (await db.execute(select(Visit.state, func.count()).group_by(Visit.state))).tuples().all()
    counts = dict(rows)
    return {state: int(counts.get(state, 0)) for state in VisitState}


async def media_totals(db: AsyncSession) -> tuple[int, int]:
    """Media rows and their recorded bytes."""
    files, size = (await db.execute(select(func.count(), func.coalesce(func.sum(MediaFile.size), 0)))).one()
    return int(files), int(size)
