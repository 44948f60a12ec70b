"""A participant held by this process: its status machine, slot epoch and connection."""

from __future__ import annotations

import asyncio
import logging
import time

from telehealth.signaling.gateway import SignalingStateError
from telehealth.signaling.identity import Identity
from telehealth.signaling.messages import LobbyEntry, Member, Status
from telehealth.signaling.outbox import Outbox
from telehealth.signaling.ratelimit import TokenBucket

log = logging.getLogger(__name__)

_MOVES = {
    Status.WAITING: {Status.ADMITTED, Status.LEFT},
    Status.ADMITTED: {Status.LEFT},
    Status.LEFT: set(),
}


class Slot:
    """One participant's place in a visit on this process; survives a dropped connection."""

    def __init__(self, identity: Identity, epoch: int, status: Status, outbox: Outbox) -> None:
        self.identity = identity
        self.epoch = epoch
        self.status = status
        self.outbox: Outbox | None = outbox
        self.since = time.time()
        # Pending expiry while disconnected; cancelled when the participant resumes.
        self.hold: asyncio.TimerHandle | None = None
        # The presence refresher rewrites every slot every few seconds: serialise once per change.
        self._cached: tuple[tuple[object, ...], str] | None = None
        # Chat has its own, slower rate than signaling; the hub sets it on the first line.
        self.chat_bucket: TokenBucket | None = None

    @property
    def pid(self) -> str:
        """The participant id."""
        return self.identity.participant_id

    @property
    def admitted(self) -> bool:
        """True once the participant may exchange SDP and ICE."""
        return self.status is Status.ADMITTED

    def set_status(self, new: Status) -> None:
        """Move along waiting -> admitted -> left; anything else is a bug or a race."""
        if new is self.status:
            return
        if new not in _MOVES[self.status]:
            raise SignalingStateError(f"{self.pid}: cannot go from {self.status} to {new}")
        log.info("[visit=%s] %s %s -> %s", self.identity.visit_id, self.pid, self.status, new)
        self.status = new

    def cancel_hold(self) -> None:
        """Forget a pending expiry."""
        if self.hold is not None:
            self.hold.cancel()
            self.hold = None

    def member(self, node: str) -> Member:
        """This participant as announced to other processes."""
        ident = self.identity
        return Member(
            participant_id=ident.participant_id,
            role=ident.role.value,
            display_name=ident.display_name,
            status=self.status,
            connected=self.outbox is not None,
            epoch=self.epoch,
            node=node,
            lobby_id=ident.lobby_id,
            since=self.since,
        )

    def presence_value(self, node: str) -> str:
        """This participant's presence entry (Member JSON), cached until something changes."""
        key = (self.status, self.outbox is not None, self.epoch, node)
        if self._cached is None or self._cached[0] != key:
            self._cached = (key, self.member(node).model_dump_json())
        return self._cached[1]

    def lobby_entry(self) -> LobbyEntry:
        """This participant as a waiting-room entry on a clinician's dashboard."""
        return LobbyEntry(
            visit_id=self.identity.visit_id,
            participant_id=self.pid,
            display_name=self.identity.display_name,
            since=self.since,
        )
