"""Invitations, reminders and "running late" through a real SMTP server (aiosmtpd, in-process)."""

from __future__ import annotations

import asyncio
import email
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import Message
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from aiosmtpd.controller import Controller
from icalendar import Calendar
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from telehealth.app import create_app
from telehealth.handlers.messages import MessagesHandler
from telehealth.messaging.email import EmailSender
from telehealth.records.models import OutgoingMessage
from telehealth.settings import Settings
from tests.conftest import Staff, login, with_settings

PATIENT = {"mrn": "M-1", "given_name": "Ada", "family_name": "Quinn", "birth_date": "1990-01-02"}


class Inbox:
    """aiosmtpd handler keeping every message it accepted."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Accept and keep the message."""
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    """A real SMTP server on a free local port."""
    inbox, port = Inbox(), _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


async def _arrived(inbox: Inbox, count: int, wait: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + wait
    while len(inbox.messages) < count:
        assert asyncio.get_running_loop().time() < deadline, f"{len(inbox.messages)} of {count} messages arrived"
        await asyncio.sleep(0.1)


def _text(msg: Message) -> str:
    part = next(p for p in msg.walk() if p.get_content_type() == "text/plain")
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


def _link(text: str) -> str:
    return next(w for w in text.split() if "/join/" in w)


async def _visit(client: TestClient[Any, Any], at: datetime) -> str:
    r = await client.post("/api/patients", json={**PATIENT, "affected_side": "left"})
    assert r.status == 201, await r.text()
    pid = (await r.json())["id"]
    r = await client.post("/api/visits", json={"patient_id": pid, "scheduled_at": at.isoformat()})
    assert r.status == 201, await r.text()
    return str((await r.json())["id"])


async def test_invitation_and_reminder_arrive_with_a_working_link_and_a_calendar_file(
    aiohttp_client: Any, settings: Settings, staff: Staff, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    # The visit is in 10 minutes; the reminder is due 2 s after the invitation.
    tuned = with_settings(
        settings,
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_tls="none",
        reminder_before_minutes=10 - 2 / 60,
        messages_poll_seconds=0.2,
    )
    client: TestClient[Any, Any] = await aiohttp_client(create_app(tuned))
    await login(client, "clinician")
    at = (datetime.now(UTC) + timedelta(minutes=10)).replace(microsecond=0)
    vid = await _visit(client, at)

    r = await client.post(f"/api/visits/{vid}/invitation", json={"email": "ada@example.org"})
    assert r.status == 201, await r.text()
    assert [m["kind"] for m in (await r.json())["items"]] == ["invitation", "reminder"]
    await _arrived(inbox, 1)
    invitation = inbox.messages[0]
    assert invitation["To"] == "ada@example.org"
    link = _link(_text(invitation))
    # The link works: it opens the visit's join page data.
    token = link.rsplit("/", 1)[-1]
    joined = await client.get(f"/api/join/{token}")
    assert joined.status == 200
    # The calendar file has the visit's time and the link, nothing else about the patient.
    ics = next(p for p in invitation.walk() if p.get_content_type() == "text/calendar")
    raw_ics = ics.get_payload(decode=True)
    assert isinstance(raw_ics, bytes)
    event = Calendar.from_ical(raw_ics).walk("VEVENT")[0]
    assert event.decoded("dtstart") == at and str(event.get("url")) == link
    everything = invitation.as_string()
    assert "Ada" not in everything and "Quinn" not in everything and "M-1" not in everything

    await _arrived(inbox, 2)
    reminder = inbox.messages[1]
    assert reminder["Subject"] == "Reminder: your video visit" and _link(_text(reminder)) == link

    r = await client.post(f"/api/visits/{vid}/running-late", json={"minutes": 15})
    assert r.status == 201, await r.text()
    await _arrived(inbox, 3)
    assert "running about 15 minutes late" in _text(inbox.messages[2])

    # Recorded on the visit: what, to whom, when, outcome.
    recorded = (await (await client.get(f"/api/visits/{vid}/messages")).json())["items"]
    assert [(m["kind"], m["recipient"], m["outcome"]) for m in recorded] == [
        ("invitation", "ada@example.org", "sent"),
        ("reminder", "ada@example.org", "sent"),
        ("running_late", "ada@example.org", "sent"),
    ]
    assert all(m["sent_at"] for m in recorded)


async def test_a_due_reminder_is_sent_once_by_whichever_of_several_processes_claims_it(
    client: TestClient[Any, Any], settings: Settings, db: async_sessionmaker[AsyncSession], smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    # This app has no SMTP: it only records the schedule (as a process that then restarts would).
    await login(client, "clinician")
    vid = await _visit(client, datetime.now(UTC) + timedelta(hours=5))
    r = await client.post(f"/api/visits/{vid}/invitation", json={"email": "ada@example.org"})
    assert r.status == 201
    async with db() as s:
        rows = (await s.scalars(select(OutgoingMessage))).all()
        assert {(m.kind.value, m.outcome.value) for m in rows} == {("invitation", "pending"), ("reminder", "pending")}
        assert all(m.sealed_link and "/join/" not in m.sealed_link for m in rows)  # the link is stored sealed

    def process() -> MessagesHandler:
        return MessagesHandler(
            lambda: db,
            secret_key=settings.secret_key,
            clinic_tz="UTC",
            join_link_hours=24,
            reminder_before=timedelta(minutes=120),
        )

    sender = EmailSender(host="127.0.0.1", port=port, tls="none", sender="clinic@example.org")
    three = [process(), process(), process()]
    sent = await asyncio.gather(*(p.deliver_due(sender) for p in three))
    assert sum(sent) == 1 and len(inbox.messages) == 1  # the invitation; the reminder is not due
    async with db() as s, s.begin():
        await s.execute(update(OutgoingMessage).values(due_at=datetime.now(UTC) - timedelta(seconds=1)))
    sent = await asyncio.gather(*(p.deliver_due(sender) for p in three))
    assert sum(sent) == 1 and len(inbox.messages) == 2
    assert inbox.messages[1]["Subject"] == "Reminder: your video visit"
    async with db() as s:
        rows = (await s.scalars(select(OutgoingMessage))).all()
        assert {m.outcome.value for m in rows} == {"sent"} and all(m.sealed_link is None for m in rows)


async def test_an_unreachable_mail_server_is_recorded_as_failed_and_a_replaced_link_is_not_sent(
    client: TestClient[Any, Any], settings: Settings, db: async_sessionmaker[AsyncSession]
) -> None:
    await login(client, "clinician")
    vid = await _visit(client, datetime.now(UTC) + timedelta(hours=5))
    await client.post(f"/api/visits/{vid}/invitation", json={"email": "ada@example.org"})
    handler = MessagesHandler(
        lambda: db, secret_key=settings.secret_key, clinic_tz="UTC", join_link_hours=24, reminder_before=timedelta(0)
    )
    dead = EmailSender(host="127.0.0.1", port=_free_port(), tls="none", sender="clinic@example.org", timeout=2)
    assert await handler.deliver_due(dead) == 0
    recorded = (await (await client.get(f"/api/visits/{vid}/messages")).json())["items"]
    assert [(m["kind"], m["outcome"]) for m in recorded] == [("invitation", "failed"), ("reminder", "pending")]
    assert recorded[0]["error"]
    # A new link replaces the old one: the old reminder is skipped, never sent with a dead link.
    await client.post(f"/api/visits/{vid}/join-link")
    async with db() as s, s.begin():
        await s.execute(update(OutgoingMessage).values(due_at=datetime.now(UTC) - timedelta(seconds=1)))
    assert await handler.deliver_due(dead) == 0
    recorded = (await (await client.get(f"/api/visits/{vid}/messages")).json())["items"]
    assert recorded[1]["outcome"] == "skipped" and recorded[1]["error"] == "the join link was replaced or revoked"
    r = await client.post(f"/api/visits/{vid}/invitation", json={"email": "not an address"})
    assert r.status == 400
