"""The records-backed signaling gateway: identities from real sessions, state writes in any order."""

import uuid
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from telehealth.handlers.signaling_gateway import RecordsGateway
from telehealth.records import patients, visits
from telehealth.records.accounts import SessionPolicy, start_session
from telehealth.records.models import AffectedSide, User, Visit, VisitState
from telehealth.records.types import utcnow
from telehealth.signaling import Role, SignalingStateError
from tests.conftest import Staff

POLICY = SessionPolicy(idle=timedelta(minutes=30), absolute=timedelta(hours=12))


async def _visit(db: async_sessionmaker[AsyncSession], staff: Staff) -> uuid.UUID:
    async with db() as s, s.begin():
        p = await patients.create_patient(
            s,
            mrn="GW-1",
            given_name="Gail",
            family_name="Way",
            birth_date=utcnow().date(),
            affected_side=AffectedSide.LEFT,
            created_by=None,
        )
        v = await visits.schedule_visit(s, patient_id=p.id, clinician_id=staff.clinician, scheduled_at=utcnow())
    return v.id


async def _state(db: async_sessionmaker[AsyncSession], vid: uuid.UUID) -> VisitState:
    async with db() as s:
        v = await s.get(Visit, vid)
        assert v is not None
        return v.state


async def test_admit_before_the_waiting_write_lands_and_a_late_waiting_keeps_the_call(
    db: async_sessionmaker[AsyncSession], staff: Staff
) -> None:
    vid = await _visit(db, staff)
    gw = RecordsGateway(lambda: db, POLICY)
    await gw.set_visit_state(str(vid), "in_call")  # "waiting" from the other process not seen yet
    assert await _state(db, vid) == VisitState.IN_CALL
    await gw.set_visit_state(str(vid), "waiting")  # ... and now it lands, late
    assert await _state(db, vid) == VisitState.IN_CALL
    await gw.set_visit_state(str(vid), "ended")
    assert await _state(db, vid) == VisitState.ENDED
    with pytest.raises(SignalingStateError):
        await gw.set_visit_state(str(vid), "in_call")


async def test_identities_come_from_live_sessions_only(db: async_sessionmaker[AsyncSession], staff: Staff) -> None:
    vid = await _visit(db, staff)
    gw = RecordsGateway(lambda: db, POLICY)
    async with db() as s, s.begin():
        doc = await s.get(User, staff.clinician)
        rev = await s.get(User, staff.reviewer)
        visit = await s.get(Visit, vid)
        assert doc and rev and visit
        doc_token, _ = await start_session(s, user=doc, client_addr=None)
        rev_token, _ = await start_session(s, user=rev, client_addr=None)
        pat_token, _ = await start_session(s, visit=visit, client_addr=None)
    ident = await gw.authenticate_clinician(doc_token, str(vid))
    assert ident is not None and ident.role == Role.CLINICIAN and ident.lobby_id == str(staff.clinician)
    assert await gw.authenticate_clinician(rev_token, str(vid)) is None  # reviewers do not join calls
    assert await gw.authenticate_clinician(pat_token, str(vid)) is None
    assert await gw.authenticate_clinician(doc_token, "not-a-uuid") is None
    patient = await gw.authenticate_patient(pat_token)
    assert patient is not None and patient.role == Role.PATIENT and patient.visit_id == str(vid)
    assert await gw.authenticate_patient(doc_token) is None  # a staff session is no patient token
    assert await gw.authenticate_patient("garbage") is None
    assert await gw.clinician_for_lobby(doc_token) == str(staff.clinician)
    assert await gw.clinician_for_lobby(rev_token) is None


async def test_every_tab_of_a_visit_is_the_same_patient_and_rejoins_a_call_in_progress(
    db: async_sessionmaker[AsyncSession], staff: Staff
) -> None:
    vid = await _visit(db, staff)
    gw = RecordsGateway(lambda: db, POLICY)
    async with db() as s, s.begin():
        visit = await s.get(Visit, vid)
        assert visit
        first_tab, _ = await start_session(s, visit=visit, client_addr=None)
        second_tab, _ = await start_session(s, visit=visit, client_addr=None)
    before = await gw.authenticate_patient(first_tab)
    assert before is not None and before.rejoins_call is False  # not admitted yet: waiting room
    await gw.set_visit_state(str(vid), "in_call")
    again = await gw.authenticate_patient(first_tab)
    other = await gw.authenticate_patient(second_tab)
    assert again is not None and other is not None
    assert again.rejoins_call and other.rejoins_call
    # One patient slot per visit: the newest tab takes over the same participant.
    assert again.participant_id == other.participant_id == before.participant_id
