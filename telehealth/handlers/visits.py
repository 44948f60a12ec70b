"""Visits: the day's list, scheduling, changes, cancellation and the patient's join link."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.handlers.common import Handler, SessionsEnded, SessionSource
from telehealth.handlers.uow import Actor
from telehealth.records import accounts, visits
from telehealth.records.errors import InvalidInput, InvalidStateError
from telehealth.records.models import Role, User, Visit, VisitState

_ALL_TIME = (datetime(1900, 1, 1, tzinfo=UTC), datetime(9999, 1, 1, tzinfo=UTC))
# A visit typed for "now" reaches the server a little later: that is not "in the past".
_PAST_SLACK = timedelta(minutes=5)
_OVER = (VisitState.ENDED, VisitState.CANCELLED, VisitState.NO_SHOW)
Span = Literal["day", "week"]


@dataclass(frozen=True, slots=True)
class Schedule:
    """The visits of one day or week of the clinic's calendar, and that window."""

    items: Sequence[Visit]
    start: datetime
    end: datetime
    time_zone: str


@dataclass(frozen=True, slots=True)
class VisitChanges:
    """Validated changes to a visit; None leaves a field as it is."""

    clinician_id: uuid.UUID | None = None
    scheduled_at: datetime | None = None
    reason: str | None = None
    requires_dob: bool | None = None


@dataclass(frozen=True, slots=True)
class JoinLink:
    """A freshly issued join link: the token is shown once, only its hash is stored."""

    token: str
    expires_at: datetime


def day_window(day: date | None, tz_offset_minutes: int, *, whole_history: bool) -> tuple[datetime, datetime]:
    """The UTC interval of the caller's local day (today by default), or all time for a patient's history."""
    if whole_history and day is None:
        return _ALL_TIME
    offset = timedelta(minutes=tz_offset_minutes)
    local_day = day or (datetime.now(UTC) - offset).date()
    try:
        start = datetime.combine(local_day, time(0), tzinfo=UTC) + offset
        return start, start + timedelta(days=1)
    except OverflowError:
        raise InvalidInput("day is out of range", details=[{"field": "day", "message": "out of range"}]) from None


class VisitsHandler(Handler):
    """The rules of scheduling: who may run a visit, which visits may still change."""

    def __init__(
        self, sessions: SessionSource, *, join_link_hours: int, ended: SessionsEnded, clinic_tz: str = "UTC"
    ) -> None:
        super().__init__(sessions)
        self.join_link_hours = join_link_hours
        self.ended = ended
        self.clinic_tz = clinic_tz
        self._tz = ZoneInfo(clinic_tz)

    def clinic_window(self, day: date | None, span: Span) -> tuple[datetime, datetime]:
        """The UTC interval of a clinic day (today by default) or of the Monday-to-Sunday week holding it."""
        local_day = day or datetime.now(self._tz).date()
        if span == "week":
            local_day -= timedelta(days=local_day.weekday())
        days = 7 if span == "week" else 1
        # Midnight to midnight on the clinic's wall clock (23 or 25 hours across a DST change).
        start = datetime.combine(local_day, time(0), tzinfo=self._tz)
        end = datetime.combine(local_day + timedelta(days=days), time(0), tzinfo=self._tz)
        return start.astimezone(UTC), end.astimezone(UTC)

    def clinic_time(self, local: datetime) -> datetime:
        """A wall-clock time typed in the clinic's zone, as an aware UTC time."""
        return local.replace(tzinfo=self._tz).astimezone(UTC)

    async def list(
        self,
        actor: Actor,
        *,
        day: date | None,
        tz_offset_minutes: int | None,
        clinician_id: uuid.UUID | None,
        patient_id: uuid.UUID | None,
        span: Span = "day",
    ) -> Schedule:
        """A clinic day or week (or the caller's local day by offset), or a patient's whole history."""
        if patient_id is not None and day is None:
            start, end = _ALL_TIME
        elif tz_offset_minutes is not None and span == "day":
            start, end = day_window(day, tz_offset_minutes, whole_history=False)
        else:
            start, end = self.clinic_window(day, span)
        async with self.work(actor) as uow:
            found = await visits.list_visits(
                uow.db, start=start, end=end, clinician_id=clinician_id, patient_id=patient_id
            )
            uow.audit("list_visits", patient_id=patient_id, detail={"results": len(found)})
        return Schedule(items=found, start=start, end=end, time_zone=self.clinic_tz)

    async def schedule(
        self,
        actor: Actor,
        *,
        patient_id: uuid.UUID,
        clinician_id: uuid.UUID,
        scheduled_at: datetime,
        reason: str | None,
        requires_dob: bool,
    ) -> Visit:
        """Schedule a visit with an active clinician, from now on."""
        _not_past(scheduled_at)
        async with self.work(actor) as uow:
            await _check_clinician(uow.db, clinician_id)
            visit = await visits.schedule_visit(
                uow.db,
                patient_id=patient_id,
                clinician_id=clinician_id,
                scheduled_at=scheduled_at,
                reason=reason,
                requires_dob=requires_dob,
            )
            uow.audit("create_visit", object_type="visit", object_id=visit.id, patient_id=visit.patient_id)
            visit = await visits.get_visit(uow.db, visit.id, with_people=True)
        return visit

    async def get(self, actor: Actor, visit_id: uuid.UUID) -> Visit:
        """One visit with its patient and clinician."""
        async with self.work(actor) as uow:
            visit = await visits.get_visit(uow.db, visit_id, with_people=True)
            uow.audit("view_visit", object_type="visit", object_id=visit_id, patient_id=visit.patient_id)
        return visit

    async def update(self, actor: Actor, visit_id: uuid.UUID, changes: VisitChanges, *, fields: Sequence[str]) -> Visit:
        """Reschedule or reassign a visit that has not ended (``fields`` names what the caller sent)."""
        async with self.work(actor) as uow:
            visit = await visits.get_visit(uow.db, visit_id, with_people=True)
            if visit.state in _OVER:
                raise InvalidStateError("This visit is over and cannot be changed.")
            if changes.scheduled_at is not None:
                if visit.state is not VisitState.SCHEDULED:
                    raise InvalidStateError("The patient has already arrived: this visit cannot be moved now.")
                _not_past(changes.scheduled_at)
            if changes.clinician_id is not None:
                await _check_clinician(uow.db, changes.clinician_id)
                visit.clinician_id = changes.clinician_id
            if changes.scheduled_at is not None:
                visit.scheduled_at = changes.scheduled_at
            if changes.reason is not None:
                visit.reason = changes.reason
            if changes.requires_dob is not None:
                visit.join_requires_dob = changes.requires_dob
            uow.audit(
                "update_visit",
                object_type="visit",
                object_id=visit_id,
                patient_id=visit.patient_id,
                detail={"fields": sorted(fields)},
            )
            await uow.db.flush()
            # Reload so a changed clinician comes back with its name.
            uow.db.expunge(visit)
            visit = await visits.get_visit(uow.db, visit_id, with_people=True)
        return visit

    async def cancel(self, actor: Actor, visit_id: uuid.UUID, reason: str | None) -> Visit:
        """Cancel through the state machine (which also ends the join link's use)."""
        async with self.work(actor) as uow:
            visit = await visits.get_visit(uow.db, visit_id, with_people=True)
            visits.transition(visit, VisitState.CANCELLED)
            visit.cancel_reason = reason or None
            uow.audit("cancel_visit", object_type="visit", object_id=visit_id, patient_id=visit.patient_id)
        return visit

    async def no_show(self, actor: Actor, visit_id: uuid.UUID) -> Visit:
        """Record that the patient did not come: only once the visit's time has come."""
        async with self.work(actor) as uow:
            visit = await visits.get_visit(uow.db, visit_id, with_people=True)
            if visit.state is not VisitState.NO_SHOW and visit.scheduled_at > datetime.now(UTC):
                raise InvalidStateError("A visit can be marked as a no-show only once its time has come.")
            if visit.state not in (VisitState.SCHEDULED, VisitState.NO_SHOW):
                raise InvalidStateError("Only a visit the patient never joined can be marked as a no-show.")
            if visits.transition(visit, VisitState.NO_SHOW):
                uow.audit("no_show_visit", object_type="visit", object_id=visit_id, patient_id=visit.patient_id)
            else:
                uow.discard()
        return visit

    async def issue_link(self, actor: Actor, visit_id: uuid.UUID) -> JoinLink:
        """Issue a new join link; the previous one stops working."""
        async with self.work(actor) as uow:
            visit = await visits.get_visit(uow.db, visit_id)
            token = visits.issue_join_link(visit, valid_hours=self.join_link_hours)
            # The old link's patient sessions end with it; a revoked link's ones ended already.
            revoked = await accounts.revoke_visit_sessions(uow.db, visit_id)
            uow.audit("issue_join_link", object_type="visit", object_id=visit_id, patient_id=visit.patient_id)
        await self.ended.ended(revoked)
        assert visit.join_expires_at is not None
        return JoinLink(token=token, expires_at=visit.join_expires_at)

    async def revoke_link(self, actor: Actor, visit_id: uuid.UUID) -> Visit:
        """Revoke the visit's join link at once."""
        async with self.work(actor) as uow:
            visit = await visits.get_visit(uow.db, visit_id, with_people=True)
            visits.revoke_join_link(visit)
            revoked = await accounts.revoke_visit_sessions(uow.db, visit_id)
            uow.audit("revoke_join_link", object_type="visit", object_id=visit_id, patient_id=visit.patient_id)
        await self.ended.ended(revoked)
        return visit


def _not_past(when: datetime) -> None:
    if when < datetime.now(UTC) - _PAST_SLACK:
        raise InvalidInput(
            "That time has already passed. Choose a time from now on.",
            details=[{"field": "scheduled_at", "message": "in the past"}],
        )


async def _check_clinician(db: AsyncSession, clinician_id: uuid.UUID) -> None:
    """A visit's clinician must be an active clinician or admin."""
    user = await db.get(User, clinician_id)
    if user is None or user.disabled or user.role not in (Role.CLINICIAN, Role.ADMIN):
        raise InvalidInput(
            "clinician_id is not an active clinician",
            details=[{"field": "clinician_id", "message": "unknown clinician"}],
        )
