"""One visit as seen by this process: local slots plus every member known via the broker."""

from __future__ import annotations

import asyncio
import logging

from telehealth.signaling.broker import Subscription
from telehealth.signaling.codec import ProtocolError
from telehealth.signaling.identity import Role
from telehealth.signaling.messages import (
    ErrorCode,
    Member,
    Message,
    ParticipantInfo,
    Presence,
    Status,
)
from telehealth.signaling.participant import Slot

log = logging.getLogger(__name__)


def channel(visit_id: str) -> str:
    """Broker channel and presence scope of a visit."""
    return f"visit:{visit_id}"


def role_rank(role: str) -> int:
    """Rank of a role name; unknown roles (newer processes) rank last."""
    try:
        return Role(role).rank
    except ValueError:
        return len(Role)


def offerer(a: Member, b: Member) -> str:
    """Which of two participants makes (and restarts) the offer: higher role, then lower id."""
    key_a = (role_rank(a.role), a.participant_id)
    key_b = (role_rank(b.role), b.participant_id)
    return a.participant_id if key_a <= key_b else b.participant_id


class Room:
    """Membership of one visit; local slots are authoritative, remote members are a view."""

    def __init__(self, visit_id: str, node: str) -> None:
        self.visit_id = visit_id
        self.node = node
        self.slots: dict[str, Slot] = {}
        self.members: dict[str, Member] = {}
        # Last presence entry seen per remote member, so unchanged entries are not re-parsed.
        self.raw: dict[str, str] = {}
        self.subscription: Subscription | None = None
        # Serialises joins and leaves so a slot is never created twice concurrently.
        self.lock = asyncio.Lock()

    @property
    def channel(self) -> str:
        """Broker channel of this visit."""
        return channel(self.visit_id)

    @property
    def in_call(self) -> bool:
        """True once any participant who had to wait has been admitted."""
        return any(m.status is Status.ADMITTED and not _staff(m.role) for m in self.members.values())

    def sync_local(self, slot: Slot) -> Member:
        """Refresh the member view of a local slot and return it."""
        member = slot.member(self.node)
        if slot.status is Status.LEFT:
            self.members.pop(slot.pid, None)
        else:
            self.members[slot.pid] = member
        return member

    def others(self, pid: str) -> list[ParticipantInfo]:
        """Everyone but pid, as browsers see them."""
        return [m.public() for p, m in self.members.items() if p != pid]

    def staff(self, pid: str) -> list[ParticipantInfo]:
        """Staff members but pid: what a waiting participant may know (the clinician is here)."""
        return [m.public() for p, m in self.members.items() if p != pid and _staff(m.role)]

    def tell_admitted(self, message: Message, *, skip: str | None = None) -> None:
        """Send to every connected, admitted local participant except skip."""
        for slot in self.slots.values():
            if slot.pid != skip and slot.admitted and slot.outbox is not None:
                slot.outbox.send(message)

    def tell_clinicians(self, message: Message) -> None:
        """Send to every connected clinician of this visit held by this process."""
        for slot in self.slots.values():
            if slot.identity.role is Role.CLINICIAN and slot.admitted and slot.outbox is not None:
                slot.outbox.send(message)

    def announce_locally(self, member: Member) -> None:
        """Tell local admitted participants about a member's change (waiting ones: staff only)."""
        news = Presence(participant=member.public())
        self.tell_admitted(news, skip=member.participant_id)
        if _staff(member.role):
            for slot in self.slots.values():
                if slot.status is Status.WAITING and slot.outbox is not None:
                    slot.outbox.send(news)

    def target(self, sender: Slot, peer: str | None) -> Member:
        """The admitted member a relayed message goes to; the only one if peer is omitted."""
        if peer is None:
            candidates = [m for p, m in self.members.items() if p != sender.pid and m.status is Status.ADMITTED]
            if len(candidates) != 1:
                raise ProtocolError(ErrorCode.PEER_REQUIRED, "name the peer: not exactly one", stale=True)
            return candidates[0]
        member = self.members.get(peer)
        if member is None or peer == sender.pid:
            # Left, or (peer == sender) a client bug; only the former happens to honest pages.
            raise ProtocolError(ErrorCode.UNKNOWN_PEER, f"no participant {peer} in this visit", stale=member is None)
        if member.status is not Status.ADMITTED:
            raise ProtocolError(ErrorCode.FORBIDDEN, f"{peer} has not been admitted", stale=True)
        return member


def _staff(role: str) -> bool:
    try:
        return Role(role).admitted_on_join
    except ValueError:
        return False
