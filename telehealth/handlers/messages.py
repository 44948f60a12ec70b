"""Messages to patients: invitations with a calendar file, reminders from a durable schedule, running late."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import secrets
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from cryptography.fernet import Fernet, InvalidToken

from telehealth.handlers.common import Handler, SessionSource
from telehealth.handlers.uow import Actor
from telehealth.messaging.calendar import visit_invitation
from telehealth.messaging.sender import Attachment, MessageSender, Outgoing, SendFailed
from telehealth.records import messages, visits
from telehealth.records.errors import InvalidStateError
from telehealth.records.models import MessageKind, MessageOutcome, OutgoingMessage, Visit
from telehealth.records.tokens import token_hash
from telehealth.records.types import utcnow

log = logging.getLogger(__name__)

_SYSTEM = Actor(None, "system")
_BATCH = 20
# A process that claimed a message and then died: after this long another process sends it.
CLAIM_LEASE = timedelta(minutes=10)


class MessagesHandler(Handler):
    """Schedules, records and sends what the clinic tells a patient about a visit."""

    def __init__(
        self,
        sessions: SessionSource,
        *,
        secret_key: str,
        clinic_tz: str,
        join_link_hours: int,
        reminder_before: timedelta,
    ) -> None:
        super().__init__(sessions)
        key = hashlib.sha256(b"telehealth-messages:" + secret_key.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(key))
        self._tz = ZoneInfo(clinic_tz)
        self.clinic_tz = clinic_tz
        self.join_link_hours = join_link_hours
        self.reminder_before = reminder_before
        self.node = secrets.token_hex(4)
        # Set after a message is scheduled for now, so the sender does not wait for its next poll.
        self.wake = asyncio.Event()

    # --- scheduling (clinician actions) -----------------------------------------------------------

    async def invite(self, actor: Actor, visit_id: uuid.UUID, *, email: str, base_url: str) -> list[OutgoingMessage]:
        """Issue a fresh join link and schedule the invitation (now) and the reminder (before the visit)."""
        async with self.work(actor) as uow:
            visit = await visits.get_visit(uow.db, visit_id)
            token = visits.issue_join_link(visit, valid_hours=self.join_link_hours)
            sealed = self._fernet.encrypt(f"{base_url}/join/{token}".encode()).decode()
            now = utcnow()
            for old in await messages.pending_for_visit(uow.db, visit_id):
                if old.kind is not MessageKind.RUNNING_LATE:  # they carry the link that just stopped working
                    _settle(old, MessageOutcome.SKIPPED, "a newer join link was sent")
            rows = [_row(visit, MessageKind.INVITATION, email, now, actor, sealed)]
            remind_at = visit.scheduled_at - self.reminder_before
            if remind_at > now:
                rows.append(_row(visit, MessageKind.REMINDER, email, remind_at, actor, sealed))
            uow.db.add_all(rows)
            uow.audit(
                "invite_patient",
                object_type="visit",
                object_id=visit_id,
                patient_id=visit.patient_id,
                detail={"reminder": len(rows) == 2},
            )
        self.wake.set()
        return rows

    async def running_late(self, actor: Actor, visit_id: uuid.UUID, *, minutes: int) -> OutgoingMessage:
        """Tell the patient (at the address last invited) that the clinician is running late."""
        async with self.work(actor) as uow:
            visit = await visits.get_visit(uow.db, visit_id)
            if visit.state in visits.OVER:
                raise InvalidStateError("This visit is over.")
            sent = [m for m in await messages.for_visit(uow.db, visit_id) if m.kind is MessageKind.INVITATION]
            if not sent:
                raise InvalidStateError("No email address is known for this visit: send the invitation first.")
            row = _row(visit, MessageKind.RUNNING_LATE, sent[-1].recipient, utcnow(), actor, None)
            row.minutes_late = minutes
            uow.db.add(row)
            uow.audit("running_late", object_type="visit", object_id=visit_id, patient_id=visit.patient_id)
        self.wake.set()
        return row

    async def list(self, actor: Actor, visit_id: uuid.UUID) -> Sequence[OutgoingMessage]:
        """What was (or will be) sent about a visit: what, to whom, when, outcome."""
        async with self.work(actor) as uow:
            visit = await visits.get_visit(uow.db, visit_id)
            found = await messages.for_visit(uow.db, visit_id)
            uow.audit("view_messages", object_type="visit", object_id=visit_id, patient_id=visit.patient_id)
        return found

    # --- sending (the background sender) -----------------------------------------------------------

    async def deliver_due(self, sender: MessageSender) -> int:
        """Send every due message this process manages to claim first; returns how many went out."""
        now = utcnow()
        async with self.sessionmaker() as db:
            due = await messages.due_ids(db, now=now, stale_before=now - CLAIM_LEASE, limit=_BATCH)
        sent = 0
        for message_id in due:
            async with self.sessionmaker() as db, db.begin():
                mine = await messages.claim(
                    db, message_id, now=utcnow(), stale_before=utcnow() - CLAIM_LEASE, node=self.node
                )
            if mine:
                sent += await self._deliver(message_id, sender)
        return sent

    async def _deliver(self, message_id: uuid.UUID, sender: MessageSender) -> int:
        async with self.sessionmaker() as db:
            row = await db.get(OutgoingMessage, message_id)
            assert row is not None
            visit = await visits.get_visit(db, row.visit_id)
            outgoing, skip = self._compose(row, visit)
        outcome, error = MessageOutcome.SENT, None
        if skip is not None or outgoing is None:
            outcome, error = MessageOutcome.SKIPPED, skip
        else:
            try:
                await sender.send(outgoing)
            except SendFailed as exc:
                log.warning("[visit=%s] %s not sent: %s", row.visit_id, row.kind.value, exc)
                outcome, error = MessageOutcome.FAILED, str(exc)
        async with self.work(_SYSTEM) as uow:
            row = await uow.db.get(OutgoingMessage, message_id)
            assert row is not None
            _settle(row, outcome, error)
            uow.audit(
                "send_message",
                object_type="visit",
                object_id=row.visit_id,
                patient_id=visit.patient_id,
                detail={"kind": row.kind.value, "channel": sender.channel},
                outcome=outcome.value,
            )
        return 1 if outcome is MessageOutcome.SENT else 0

    def _compose(self, row: OutgoingMessage, visit: Visit) -> tuple[Outgoing | None, str | None]:
        """The message for a row, or why it is no longer worth sending. Only a link and a time in it."""
        if visit.state in visits.OVER:
            return None, "the visit is over"
        local = visit.scheduled_at.astimezone(self._tz)
        when = f"{local:%A %d %B %Y} at {local:%H:%M} ({self.clinic_tz})"
        if row.kind is MessageKind.RUNNING_LATE:
            text = (
                f"Your clinician is running about {row.minutes_late} minutes late for your video visit.\n"
                "Please keep the visit page open; you will be let in as soon as possible.\n"
            )
            return Outgoing(to=row.recipient, subject="Your clinician is running late", text=text), None
        try:
            url = self._fernet.decrypt((row.sealed_link or "").encode()).decode()
        except InvalidToken:
            return None, "the link could not be read (server key changed)"
        token = url.rsplit("/", 1)[-1]
        if visit.join_revoked_at is not None or visit.join_token_hash != token_hash(token):
            return None, "the join link was replaced or revoked"
        if row.kind is MessageKind.REMINDER:
            text = f"Reminder: your video visit is on {when}.\n\nJoin it from this link at that time:\n{url}\n"
            return Outgoing(to=row.recipient, subject="Reminder: your video visit", text=text), None
        text = (
            f"You have a video visit on {when}.\n\n"
            f"At that time, open this link on a phone or computer with a camera:\n{url}\n\n"
            "The attached calendar file adds the visit to your calendar.\n"
        )
        ics = visit_invitation(uid=f"{visit.id}@telehealth", start=visit.scheduled_at, url=url)
        attachment = Attachment("visit.ics", "text/calendar", ics)
        return Outgoing(to=row.recipient, subject="Your video visit", text=text, attachments=(attachment,)), None


def _row(visit: Visit, kind: MessageKind, to: str, due: datetime, actor: Actor, sealed: str | None) -> OutgoingMessage:
    return OutgoingMessage(
        id=uuid.uuid4(),
        visit_id=visit.id,
        kind=kind,
        channel="email",
        recipient=to,
        due_at=due,
        sealed_link=sealed,
        outcome=MessageOutcome.PENDING,
        created_by=actor.id,
        created_at=utcnow(),
    )


def _settle(row: OutgoingMessage, outcome: MessageOutcome, error: str | None) -> None:
    row.outcome = outcome
    row.error = error[:200] if error else None
    row.sealed_link = None  # the link is not kept once the message is settled
    if outcome is MessageOutcome.SENT:
        row.sent_at = utcnow()
