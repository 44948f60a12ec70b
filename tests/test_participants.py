"""Third participants on the records: invite links by role, who took part, removal revokes, audit."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from telehealth.handlers.signaling_gateway import RecordsGateway
from telehealth.records import participants
from telehealth.records.accounts import SessionPolicy, start_session
from telehealth.records.models import AuditEvent, User
from telehealth.signaling import Role
from tests.conftest import Staff, login
from tests.test_gateway import _visit

POLICY = SessionPolicy(idle=timedelta(minutes=30), absolute=timedelta(hours=12))


async def _actions(db: async_sessionmaker[AsyncSession], vid: uuid.UUID) -> list[str]:
    async with db() as s:
        rows = await s.scalars(select(AuditEvent).where(AuditEvent.object_id == str(vid)).order_by(AuditEvent.id))
        return [r.action for r in rows]


async def test_an_invited_interpreter_joins_waiting_is_recorded_and_removal_revokes_the_link(
    client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession], staff: Staff
) -> None:
    vid = await _visit(db, staff)
    await login(client, "clinician")
    resp = await client.post(f"/api/visits/{vid}/invites", json={"role": "interpreter", "display_name": "Lou Arabic"})
    assert resp.status == 201, await resp.text()
    invite = await resp.json()
    token = invite["url"].rsplit("/", 1)[1]
    info = await (await client.get(f"/api/invite/{token}")).json()
    assert (info["role"], info["display_name"], info["clinician_name"]) == ("interpreter", "Lou Arabic", "Dr. Clin")
    assert (await client.get(f"/invite/{token}")).status == 200

    gw = RecordsGateway(lambda: db, POLICY)
    guest = await gw.authenticate_patient(token)
    assert guest is not None and guest.role == Role.INTERPRETER and guest.waits
    assert guest.visit_id == str(vid) and guest.participant_id == f"guest-{invite['id']}"
    doctor = await gw.authenticate_clinician(await _session_of(db, staff.clinician), str(vid))
    assert doctor is not None and doctor.role == Role.CLINICIAN and not doctor.waits
    await gw.participant_admitted(str(vid), guest.participant_id, doctor)
    await gw.participant_removed(str(vid), guest.participant_id, doctor)

    assert await gw.authenticate_patient(token) is None  # the removed interpreter cannot come back
    assert (await client.get(f"/api/invite/{token}")).status == 410
    roster = await (await client.get(f"/api/visits/{vid}/participants")).json()
    assert [(p["role"], p["display_name"]) for p in roster["participants"]] == [
        ("interpreter", "Lou Arabic"),
        ("clinician", "Dr. Clin"),
    ]
    lou = roster["participants"][0]
    assert lou["admitted_at"] is not None and lou["removed_at"] is not None
    assert roster["invites"][0]["revoked"] is True and roster["invites"][0]["url"] is None
    actions = await _actions(db, vid)
    for action in ("invite_participant", "join_visit", "admit_participant", "remove_participant"):
        assert action in actions


async def test_a_colleague_joins_from_their_own_login_as_a_waiting_observer(
    db: async_sessionmaker[AsyncSession], staff: Staff
) -> None:
    vid = await _visit(db, staff)
    gw = RecordsGateway(lambda: db, POLICY)
    colleague = await gw.authenticate_clinician(await _session_of(db, staff.clinician2), str(vid))
    assert colleague is not None and colleague.role == Role.OBSERVER and colleague.waits
    async with db() as s:
        rows = await participants.list_participants(s, vid)
    assert [(r.role, r.user_id) for r in rows] == [("observer", staff.clinician2)]


async def test_chat_is_kept_with_the_visit_only_through_the_gateway(
    client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession], staff: Staff
) -> None:
    vid = await _visit(db, staff)
    gw = RecordsGateway(lambda: db, POLICY)
    doctor = await gw.authenticate_clinician(await _session_of(db, staff.clinician), str(vid))
    assert doctor is not None
    await gw.keep_chat(doctor, "Please spell your street name")
    await login(client, "clinician")
    roster = await (await client.get(f"/api/visits/{vid}/participants")).json()
    assert [c["text"] for c in roster["chat"]] == ["Please spell your street name"]


async def test_reviewers_cannot_invite_and_unknown_roles_are_refused(
    client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession], staff: Staff
) -> None:
    vid = await _visit(db, staff)
    await login(client, "reviewer")
    resp = await client.post(f"/api/visits/{vid}/invites", json={"role": "family", "display_name": "Mum"})
    assert resp.status == 403
    await client.post("/api/auth/logout")
    await login(client, "clinician")
    resp = await client.post(f"/api/visits/{vid}/invites", json={"role": "surgeon", "display_name": "X"})
    assert resp.status == 400


async def _session_of(db: async_sessionmaker[AsyncSession], user_id: uuid.UUID) -> str:
    async with db() as s, s.begin():
        user = await s.get(User, user_id)
        assert user is not None
        token, _ = await start_session(s, user=user, client_addr=None)
    return token
