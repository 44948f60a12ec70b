"""Every visit hosted by this process: join, resume, admission, relaying and presence upkeep."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from functools import partial
from typing import Any

from pydantic import ValidationError

from telehealth import metrics
from telehealth.signaling import resumetoken
from telehealth.signaling.broker import Broker, BrokerUnavailable, PresenceItem
from telehealth.signaling.capturemessages import CaptureChanged
from telehealth.signaling.codec import BusFrame, ProtocolError
from telehealth.signaling.config import SignalingSettings
from telehealth.signaling.gateway import SignalingStateError, VisitGateway, VisitStateName
from telehealth.signaling.identity import Identity, skips_waiting
from telehealth.signaling.lobby import LobbyFeed, lobby_scope
from telehealth.signaling.messages import (
    Admit,
    Announce,
    Chat,
    Decline,
    ErrorCode,
    Hangup,
    IceRestart,
    IceServers,
    Join,
    LobbyUpdate,
    Member,
    Message,
    Presence,
    Remove,
    Status,
    Waiting,
)
from telehealth.signaling.outbox import CloseCode, Outbox
from telehealth.signaling.participant import Slot
from telehealth.signaling.ratelimit import TokenBucket
from telehealth.signaling.room import Room, channel, offerer
from telehealth.signaling.turn import ice_servers

log = logging.getLogger(__name__)

RESUME_TOKEN_LIFETIME = 12 * 3600.0  # the epoch check, not this, limits a token to one slot
_BATCH = 50  # presence upkeep yields to the loop between batches to keep relay latency flat


def _unavailable(exc: BrokerUnavailable, ref: str | None = None) -> ProtocolError:
    return ProtocolError(ErrorCode.UNAVAILABLE, "signaling is reconnecting; retry shortly", ref)


class Hub:
    """Owns the rooms, the lobby feed and the presence refresher of this process."""

    def __init__(self, broker: Broker, gateway: VisitGateway, settings: SignalingSettings) -> None:
        self.broker = broker
        self.gateway = gateway
        self.settings = settings
        self.lobby = LobbyFeed(broker)
        self.node = broker.node_id
        self._rooms: dict[str, Room] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._refresher: asyncio.Task[None] | None = None
        # Remote members missing from presence this many reconciles in a row are gone.
        self._missing: dict[tuple[str, str], int] = {}
        broker.on_resync(self._resync)

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the presence refresher."""
        self._refresher = asyncio.create_task(self._refresh_loop(), name="signaling-presence")

    async def close(self) -> None:
        """Cancel timers and tasks, close connections and subscriptions."""
        tasks = [t for t in (self._refresher, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for room in list(self._rooms.values()):
            for slot in room.slots.values():
                slot.cancel_hold()
                if slot.outbox is not None:
                    slot.outbox.close(CloseCode.GOING_AWAY, "server shutting down")
            if room.subscription is not None:
                await room.subscription.close()
        self._rooms.clear()
        await self.lobby.close()

    def rooms(self) -> dict[str, Room]:
        """Rooms by visit id (read-only use: tests and diagnostics)."""
        return self._rooms

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            if isinstance(exc, BrokerUnavailable):
                log.warning("%s: broker unavailable; presence refresh will repair", task.get_name())
            else:
                log.error("%s failed", task.get_name(), exc_info=exc)

    # --- joining ------------------------------------------------------------------------------

    async def join(self, identity: Identity, outbox: Outbox) -> Slot:
        """Give an authenticated participant a slot; patients start in the waiting room."""
        return await self._attach(identity, outbox, None)

    async def resume(self, token: str, outbox: Outbox, visit_id: str) -> Slot:
        """Restore a dropped participant's slot from its resume token."""
        claim = resumetoken.verify(self.settings.resume_secret, token)
        if claim is None or claim.identity.visit_id != visit_id:
            raise ProtocolError(ErrorCode.RESUME_FAILED, "resume token is not valid")
        return await self._attach(claim.identity, outbox, claim)

    async def _attach(self, identity: Identity, outbox: Outbox, claim: resumetoken.ResumeClaim | None) -> Slot:
        visit_id = identity.visit_id
        while True:
            room = self._rooms.get(visit_id) or self._rooms.setdefault(visit_id, Room(visit_id, self.node))
            async with room.lock:
                if self._rooms.get(visit_id) is not room:
                    continue  # closed while we waited for the lock
                try:
                    slot, new_page = await self._attach_locked(room, identity, outbox, claim)
                except BrokerUnavailable as exc:
                    raise _unavailable(exc) from exc
                finally:
                    if not room.slots:
                        await self._close_room(room)
            self._welcome(room, slot, resumed=claim is not None, new_page=new_page)
            return slot

    async def _attach_locked(
        self, room: Room, identity: Identity, outbox: Outbox, claim: resumetoken.ResumeClaim | None
    ) -> tuple[Slot, bool]:
        """The new slot, and whether it replaces an admitted one from an earlier page (new peer)."""
        if room.subscription is None:
            # Subscribe before announcing (and before reading presence) so nothing is missed.
            room.subscription = await self.broker.subscribe(room.channel, partial(self._on_frame, room))
        await self._reconcile(room, prune=False)
        pid = identity.participant_id
        earlier = room.members.get(pid)
        if claim is None:
            status = Status.ADMITTED if skips_waiting(identity) else Status.WAITING
        else:
            known = room.members.get(pid)
            if known is None or known.epoch != claim.epoch:
                raise ProtocolError(ErrorCode.RESUME_FAILED, "slot expired; authenticate again")
            status = known.status
        slot = Slot(identity, time.time_ns(), status, outbox)
        old = room.slots.get(pid)
        if claim is not None and old is not None:
            slot.since = old.since
        await self._publish_member(room, slot)
        if old is not None:
            self._drop_superseded(room, old)
        room.slots[pid] = slot
        room.sync_local(slot)
        new_page = claim is None and earlier is not None and earlier.status is Status.ADMITTED
        return slot, new_page

    def _welcome(self, room: Room, slot: Slot, *, resumed: bool, new_page: bool) -> None:
        assert slot.outbox is not None
        ident = slot.identity
        token = resumetoken.issue(self.settings.resume_secret, ident, slot.epoch, RESUME_TOKEN_LIFETIME)
        servers = ice_servers(self.settings, ident.user_id or ident.participant_id)
        slot.outbox.send(
            Join(
                visit_id=ident.visit_id,
                participant_id=slot.pid,
                role=ident.role.value,
                display_name=ident.display_name,
                status=slot.status,
                resume_token=token,
                resumed=resumed,
                participants=tuple(room.others(slot.pid) if slot.admitted else room.staff(slot.pid)),
                ice_servers=tuple(servers),
            )
        )
        room.announce_locally(room.members[slot.pid])
        if slot.status is Status.WAITING:
            slot.outbox.send(Waiting(visit_id=ident.visit_id))
            if not room.in_call:
                self._spawn(self._persist_quietly(ident.visit_id, "waiting"), "persist-waiting")
        if resumed and slot.admitted:
            self._spawn(self._restart_ice(room, slot), "ice-restart")
        elif new_page and slot.admitted:
            self._spawn(self._new_peer(room, slot), "new-peer")

    async def _restart_ice(self, room: Room, slot: Slot) -> None:
        """Ask the offerer of each of the resumed participant's pairs to restart ICE."""
        me = room.members[slot.pid]
        for pid, other in list(room.members.items()):
            if pid == slot.pid or other.status is not Status.ADMITTED:
                continue
            if offerer(me, other) == slot.pid:
                if slot.outbox is not None:
                    slot.outbox.send(IceRestart(peer=pid, reason="resumed"))
            else:
                restart = IceRestart(peer=slot.pid, reason="resumed")
                await self._deliver(room, other, restart, slot.pid)

    async def _new_peer(self, room: Room, slot: Slot) -> None:
        """A reloaded (or newest-tab) page has a brand-new peer connection: its offerers start over."""
        me = room.members.get(slot.pid)
        if me is None:
            return  # left again before this ran
        for pid, other in list(room.members.items()):
            if pid == slot.pid or other.status is not Status.ADMITTED or offerer(me, other) == slot.pid:
                continue  # the new page offers to those itself, from its join's participant list
            await self._deliver(room, other, IceRestart(peer=slot.pid, reason="new-peer"), slot.pid)

    # --- leaving ------------------------------------------------------------------------------

    def detach(self, slot: Slot, outbox: Outbox, *, away: bool = False) -> None:
        """The connection is gone: keep the slot for the grace period, then release it.

        `away`: the page closed the socket itself (closed tab, reload, back button), so the slot
        is kept only briefly; a reload rejoins on its own credential, not on the slot.
        """
        room = self._rooms.get(slot.identity.visit_id)
        if room is None or room.slots.get(slot.pid) is not slot or slot.outbox is not outbox:
            return  # superseded, declined or ended meanwhile
        slot.outbox = None
        room.announce_locally(room.sync_local(slot))
        loop = asyncio.get_running_loop()
        grace = self.settings.away_grace if away else self.settings.resume_grace
        slot.hold = loop.call_later(grace, self._expire, slot)
        self._spawn(self._publish_member(room, slot), f"away-{slot.pid}")

    def _expire(self, slot: Slot) -> None:
        slot.hold = None
        self._spawn(self.leave(slot), f"expire-{slot.pid}")

    async def leave(self, slot: Slot) -> None:
        """Release a slot for good and tell everyone the participant left."""
        room = self._rooms.get(slot.identity.visit_id)
        if room is None:
            return
        async with room.lock:
            if room.slots.get(slot.pid) is not slot:
                return
            del room.slots[slot.pid]
            slot.cancel_hold()
            was_waiting = slot.status is Status.WAITING
            slot.set_status(Status.LEFT)
            member = room.sync_local(slot)
            room.announce_locally(member)
            try:
                await self.broker.remove_presence(room.channel, slot.pid)
                await self._announce(room, member)
                if was_waiting:
                    await self._lobby_gone(slot)
            except BrokerUnavailable:
                log.warning("[visit=%s] %s left while broker down", room.visit_id, slot.pid)
            finally:
                if not room.slots:
                    await self._close_room(room)

    def _drop_superseded(self, room: Room, slot: Slot) -> None:
        """The same participant connected again (here or elsewhere): retire this slot quietly."""
        slot.cancel_hold()
        if room.slots.get(slot.pid) is slot:
            del room.slots[slot.pid]
        if slot.outbox is not None:
            slot.outbox.close(CloseCode.SUPERSEDED, "connected elsewhere")
            slot.outbox = None

    async def _close_room(self, room: Room) -> None:
        if self._rooms.get(room.visit_id) is room:
            del self._rooms[room.visit_id]
        for pid in room.members:
            self._missing.pop((room.visit_id, pid), None)
        if room.subscription is not None:
            subscription, room.subscription = room.subscription, None
            await subscription.close()

    async def _close_if_empty(self, room: Room) -> None:
        async with room.lock:
            if not room.slots:
                await self._close_room(room)

    # --- commands from participants -----------------------------------------------------------

    def _room_of(self, slot: Slot) -> Room:
        room = self._rooms.get(slot.identity.visit_id)
        if room is None or room.slots.get(slot.pid) is not slot:
            raise ProtocolError(ErrorCode.INVALID_STATE, "you are no longer in this visit", stale=True)
        return room

    def _require_clinician(self, slot: Slot, ref: str) -> None:
        if not (slot.identity.role.may_admit and slot.admitted):
            raise ProtocolError(ErrorCode.FORBIDDEN, "only the clinician may do this", ref)

    def _waiting_member(self, room: Room, pid: str, ref: str) -> Member:
        member = room.members.get(pid)
        if member is None:
            raise ProtocolError(ErrorCode.UNKNOWN_PEER, f"no participant {pid} in this visit", ref, stale=True)
        if member.status is not Status.WAITING:
            raise ProtocolError(ErrorCode.INVALID_STATE, f"{pid} is not waiting", ref, stale=True)
        return member

    async def admit(self, slot: Slot, message: Admit) -> None:
        """A clinician lets a waiting participant into the call."""
        room = self._room_of(slot)
        self._require_clinician(slot, message.id)
        target = self._waiting_member(room, message.participant_id, message.id)
        await self._persist(room.visit_id, "in_call", message.id)
        self._spawn(self._record_admitted(room.visit_id, target.participant_id, slot.identity), "record-admit")
        local = room.slots.get(target.participant_id)
        if local is not None:
            self._apply_admit(room, local)
            return
        await self._send_remote(room, slot.pid, target.participant_id, message, message.id)
        self._assume_admitted(room, target)

    async def _send_remote(self, room: Room, sender: str, to: str, message: Message, ref: str) -> None:
        """Send to a participant attached to another process; `unavailable` (answering ref) while the bus is down."""
        try:
            await self.broker.publish(room.channel, BusFrame(self.node, sender, to, message))
        except BrokerUnavailable as exc:
            raise _unavailable(exc, ref) from exc

    def _assume_admitted(self, room: Room, target: Member) -> None:
        # Optimistic, so the clinician's offer is accepted before the remote announce arrives.
        admitted = target.model_copy(update={"status": Status.ADMITTED})
        room.members[target.participant_id] = admitted
        room.announce_locally(admitted)

    def _apply_admit(self, room: Room, slot: Slot) -> None:
        if slot.status is not Status.WAITING:
            return
        slot.set_status(Status.ADMITTED)
        member = room.sync_local(slot)
        if slot.outbox is not None:
            slot.outbox.send(Admit(participant_id=slot.pid))
            for info in room.others(slot.pid):
                slot.outbox.send(Presence(participant=info))
        room.announce_locally(member)
        self._spawn(self._publish_admitted(room, slot), f"admitted-{slot.pid}")

    async def _publish_admitted(self, room: Room, slot: Slot) -> None:
        await self._publish_member(room, slot)
        await self._lobby_gone(slot)

    async def decline(self, slot: Slot, message: Decline) -> None:
        """A clinician turns a waiting participant away."""
        room = self._room_of(slot)
        self._require_clinician(slot, message.id)
        target = self._waiting_member(room, message.participant_id, message.id)
        local = room.slots.get(target.participant_id)
        if local is not None:
            self._apply_decline(local, message.reason)
            return
        await self._send_remote(room, slot.pid, target.participant_id, message, message.id)

    def _apply_decline(self, slot: Slot, reason: str | None) -> None:
        if slot.status is not Status.WAITING:
            return
        if slot.outbox is not None:
            slot.outbox.send(Decline(participant_id=slot.pid, reason=reason))
            slot.outbox.close(CloseCode.DECLINED, "declined")
            slot.outbox = None  # so the closing socket is not mistaken for a drop to resume
        self._spawn(self.leave(slot), f"declined-{slot.pid}")

    async def _record_admitted(self, visit_id: str, pid: str, by: Identity) -> None:
        try:
            await self.gateway.participant_admitted(visit_id, pid, by)
        except SignalingStateError as exc:
            log.info("[visit=%s] admission of %s not recorded: %s", visit_id, pid, exc)

    async def remove(self, slot: Slot, message: Remove) -> None:
        """A clinician takes a third participant (waiting or admitted) out of the call for good."""
        room = self._room_of(slot)
        self._require_clinician(slot, message.id)
        target = room.members.get(message.participant_id)
        if target is None or target.participant_id == slot.pid:
            raise ProtocolError(
                ErrorCode.UNKNOWN_PEER, f"no participant {message.participant_id} to remove", message.id
            )
        if target.role in ("clinician", "patient"):
            raise ProtocolError(ErrorCode.FORBIDDEN, "only invited participants can be removed", message.id)
        # The record first: once the link is revoked the removed participant cannot come back.
        try:
            await self.gateway.participant_removed(room.visit_id, target.participant_id, slot.identity)
        except SignalingStateError as exc:
            raise ProtocolError(ErrorCode.INVALID_STATE, str(exc)[:200], message.id) from exc
        local = room.slots.get(target.participant_id)
        if local is not None:
            self._apply_remove(local)
            return
        await self._send_remote(room, slot.pid, target.participant_id, message, message.id)

    def _apply_remove(self, slot: Slot) -> None:
        slot.cancel_hold()
        if slot.outbox is not None:
            slot.outbox.send(Remove(participant_id=slot.pid))
            slot.outbox.close(CloseCode.REMOVED, "removed by the clinician")
            slot.outbox = None  # so the closing socket is not mistaken for a drop to resume
        self._spawn(self.leave(slot), f"removed-{slot.pid}")

    async def chat(self, slot: Slot, message: Chat) -> None:
        """A chat line from an admitted participant to everyone admitted (the sender included)."""
        room = self._room_of(slot)
        if not slot.admitted:
            raise ProtocolError(ErrorCode.FORBIDDEN, "wait until you are admitted", message.id)
        if slot.chat_bucket is None:
            slot.chat_bucket = TokenBucket(self.settings.chat_per_second, self.settings.chat_burst)
        if not slot.chat_bucket.take():
            raise ProtocolError(ErrorCode.RATE_LIMITED, "too many chat messages; wait a moment", message.id)
        ident = slot.identity
        line = Chat(
            text=message.text, sender=slot.pid, display_name=ident.display_name, role=ident.role.value, at=time.time()
        )
        if self.settings.keep_chat:
            try:
                await self.gateway.keep_chat(ident, message.text)
            except SignalingStateError as exc:
                raise ProtocolError(ErrorCode.INVALID_STATE, str(exc)[:200], message.id) from exc
        room.tell_admitted(line)
        try:
            await self.broker.publish(room.channel, BusFrame(self.node, slot.pid, None, line))
        except BrokerUnavailable as exc:
            raise _unavailable(exc, message.id) from exc

    async def relay(self, slot: Slot, message: Message) -> None:
        """Forward an SDP/ICE-type message to an admitted peer, stamped with the sender."""
        room = self._room_of(slot)
        if not slot.admitted:
            raise ProtocolError(ErrorCode.FORBIDDEN, "wait until you are admitted", message.id)
        if message.SENDERS is not None and slot.identity.role.value not in message.SENDERS:
            raise ProtocolError(ErrorCode.FORBIDDEN, f"{message.TYPE} is not for your role", message.id)
        started = time.perf_counter()
        try:
            target = room.target(slot, getattr(message, "peer", None))
        except ProtocolError as exc:
            exc.ref = message.id
            raise
        if message.TARGETS is not None and target.role not in message.TARGETS:
            raise ProtocolError(ErrorCode.FORBIDDEN, f"{message.TYPE} cannot go to a {target.role}", message.id)
        await self._deliver(room, target, message, slot.pid)
        # The server's share of relay latency: to the local outbox or onto the bus.
        metrics.observe_relay(time.perf_counter() - started)

    async def _deliver(self, room: Room, target: Member, message: Message, sender: str) -> None:
        stamped = message.model_copy(update={"peer": sender})
        local = room.slots.get(target.participant_id)
        if local is not None:
            # A participant between connections misses it; its resume triggers an ICE restart.
            if local.admitted and local.outbox is not None:
                local.outbox.send(stamped)
            return
        await self._send_remote(room, sender, target.participant_id, stamped, message.id)

    async def hangup(self, slot: Slot, message: Hangup) -> None:
        """A clinician's hang-up ends the visit for everyone; anyone else just leaves."""
        room = self._room_of(slot)
        if not (slot.identity.role.may_admit and slot.admitted):
            if slot.outbox is not None:
                slot.outbox.close(CloseCode.NORMAL, "left")
                slot.outbox = None
            await self.leave(slot)
            return
        try:
            await self.gateway.set_visit_state(room.visit_id, "ended")
        except SignalingStateError as exc:
            log.info("[visit=%s] ending: %s", room.visit_id, exc)
        ended = Hangup(peer=slot.pid, reason="ended")
        try:
            await self.broker.publish(room.channel, BusFrame(self.node, slot.pid, None, ended))
        except BrokerUnavailable as exc:
            raise _unavailable(exc, message.id) from exc
        self._end_locally(room, ended)

    def _end_locally(self, room: Room, ended: Hangup) -> None:
        slots = list(room.slots.values())
        for slot in slots:
            slot.cancel_hold()
            if slot.outbox is not None:
                slot.outbox.send(ended)
                slot.outbox.close(CloseCode.ENDED, "visit ended")
                slot.outbox = None
        self._spawn(self._forget(room, slots), f"end-{room.visit_id}")

    async def _forget(self, room: Room, slots: list[Slot]) -> None:
        async with room.lock:
            for slot in slots:
                if room.slots.get(slot.pid) is slot:
                    del room.slots[slot.pid]
            if not room.slots:
                await self._close_room(room)
        for slot in slots:
            await self.broker.remove_presence(room.channel, slot.pid)
            if slot.status is Status.WAITING:
                await self._lobby_gone(slot)

    def send_ice_servers(self, slot: Slot) -> None:
        """Answer a request for fresh TURN credentials."""
        if slot.outbox is not None:
            user = slot.identity.user_id or slot.pid
            slot.outbox.send(IceServers(servers=tuple(ice_servers(self.settings, user))))

    # --- capture progress -------------------------------------------------------------------

    async def capture_changed(self, visit_id: str, reason: str) -> None:
        """Tell the visit's clinicians, on every process, that its capture changed.

        Raises BrokerUnavailable when other processes cannot be told; local clinicians already were.
        """
        message = CaptureChanged(visit_id=visit_id, reason=reason)
        room = self._rooms.get(visit_id)
        if room is not None:
            room.tell_clinicians(message)
        # Published even without a local room: the change may come from a process (an upload, a
        # clip task) that holds no socket of this visit while the clinician's is elsewhere.
        await self.broker.publish(channel(visit_id), BusFrame(self.node, None, None, message))

    # --- visit state --------------------------------------------------------------------------

    async def _persist(self, visit_id: str, state: VisitStateName, ref: str) -> None:
        try:
            await self.gateway.set_visit_state(visit_id, state)
        except SignalingStateError as exc:
            raise ProtocolError(ErrorCode.INVALID_STATE, str(exc)[:200], ref) from exc

    async def _persist_quietly(self, visit_id: str, state: VisitStateName) -> None:
        try:
            await self.gateway.set_visit_state(visit_id, state)
        except SignalingStateError as exc:
            log.info("[visit=%s] not marked %s: %s", visit_id, state, exc)

    # --- the bus ------------------------------------------------------------------------------

    def _on_frame(self, room: Room, frame: BusFrame) -> None:
        if frame.node == self.node or self._rooms.get(room.visit_id) is not room:
            return  # our own frames were applied before publishing
        message = frame.message
        target = room.slots.get(frame.to) if frame.to is not None else None
        if isinstance(message, Announce):
            self._on_announce(room, message.member)
        elif isinstance(message, Hangup):
            self._end_locally(room, message)
        elif isinstance(message, Admit):
            if target is not None:
                self._apply_admit(room, target)
            elif (known := room.members.get(message.participant_id)) is not None and (known.status is Status.WAITING):
                self._assume_admitted(room, known)
        elif isinstance(message, Decline) and target is not None:
            self._apply_decline(target, message.reason)
        elif isinstance(message, CaptureChanged):
            room.tell_clinicians(message)
        elif isinstance(message, Remove) and target is not None:
            self._apply_remove(target)
        elif isinstance(message, Chat) and frame.to is None:
            room.tell_admitted(message)
        elif message.RELAY and target is not None and target.admitted and target.outbox:
            target.outbox.send(message)

    def _on_announce(self, room: Room, member: Member) -> None:
        pid = member.participant_id
        slot = room.slots.get(pid)
        if slot is not None:
            if member.epoch <= slot.epoch:
                return  # stale news about our own participant
            self._drop_superseded(room, slot)
            if not room.slots:
                self._spawn(self._close_if_empty(room), f"close-{room.visit_id}")
        previous = room.members.get(pid)
        if previous is not None and previous.epoch > member.epoch:
            return
        if member.status is Status.LEFT:
            if room.members.pop(pid, None) is None:
                return
        else:
            room.members[pid] = member
        if previous is None or previous.public() != member.public():
            room.announce_locally(member)

    # --- presence upkeep ----------------------------------------------------------------------

    async def _publish_member(self, room: Room, slot: Slot) -> None:
        member = slot.member(self.node)
        items = [PresenceItem(room.channel, slot.pid, slot.presence_value(self.node))]
        lobby_id = slot.identity.lobby_id
        waiting = slot.status is Status.WAITING and lobby_id is not None
        if waiting and lobby_id is not None:
            entry = slot.lobby_entry()
            items.append(PresenceItem(lobby_scope(lobby_id), slot.pid, entry.model_dump_json()))
        await self.broker.set_presence(items, self.settings.presence_ttl)
        await self._announce(room, member)
        if waiting and lobby_id is not None:
            update = LobbyUpdate(entry=slot.lobby_entry(), status="waiting")
            frame = BusFrame(self.node, slot.pid, None, update)
            await self.broker.publish(lobby_scope(lobby_id), frame)

    async def _announce(self, room: Room, member: Member) -> None:
        frame = BusFrame(self.node, member.participant_id, None, Announce(member=member))
        await self.broker.publish(room.channel, frame)

    async def _lobby_gone(self, slot: Slot) -> None:
        lobby_id = slot.identity.lobby_id
        if lobby_id is None:
            return
        await self.broker.remove_presence(lobby_scope(lobby_id), slot.pid)
        update = LobbyUpdate(entry=slot.lobby_entry(), status="gone")
        frame = BusFrame(self.node, slot.pid, None, update)
        await self.broker.publish(lobby_scope(lobby_id), frame)

    async def _reconcile(self, room: Room, *, prune: bool) -> None:
        """Merge the presence store into the room's view of remote members."""
        entries = (await self.broker.presence([room.channel]))[room.channel]
        self._merge(room, entries, prune=prune)

    def _merge(self, room: Room, entries: dict[str, str], *, prune: bool) -> None:
        for pid, raw in entries.items():
            if pid in room.slots:
                continue
            if room.raw.get(pid) == raw and pid in room.members:
                self._missing.pop((room.visit_id, pid), None)
                continue
            room.raw[pid] = raw
            try:
                member = Member.model_validate_json(raw)
            except ValidationError:
                log.warning("[visit=%s] malformed presence for %s", room.visit_id, pid)
                continue
            if member.node != self.node:
                self._missing.pop((room.visit_id, pid), None)
                self._on_announce(room, member)
        if not prune:
            return
        for pid, member in list(room.members.items()):
            if pid in room.slots or pid in entries:
                continue
            # Twice in a row, so a just-restarted Redis is not mistaken for a departure.
            key = (room.visit_id, pid)
            self._missing[key] = self._missing.get(key, 0) + 1
            if self._missing[key] >= 2:
                del self._missing[key]
                room.raw.pop(pid, None)
                self._on_announce(room, member.model_copy(update={"status": Status.LEFT}))

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.presence_ttl / 3)
            try:
                await self._refresh(announce=False)
            except BrokerUnavailable as exc:
                log.warning("presence refresh failed: %s", exc)

    async def _refresh(self, *, announce: bool) -> None:
        """Rewrite our presence entries; re-read rooms that have remote members."""
        rooms = list(self._rooms.values())
        for start in range(0, len(rooms), _BATCH):
            batch = rooms[start : start + _BATCH]
            items: list[PresenceItem] = []
            for room in batch:
                for slot in room.slots.values():
                    items.extend(self._presence_items(room, slot))
            await self.broker.set_presence(items, self.settings.presence_ttl)
            if announce:
                for room in batch:
                    for slot in list(room.slots.values()):
                        await self._publish_member(room, slot)
            remote = [r for r in batch if announce or self._has_remote(r)]
            if remote:
                found = await self.broker.presence([r.channel for r in remote])
                for room in remote:
                    if self._rooms.get(room.visit_id) is room:
                        self._merge(room, found[room.channel], prune=not announce)
            await asyncio.sleep(0)

    def _has_remote(self, room: Room) -> bool:
        return any(m.node != self.node for m in room.members.values())

    def _presence_items(self, room: Room, slot: Slot) -> list[PresenceItem]:
        items = [PresenceItem(room.channel, slot.pid, slot.presence_value(self.node))]
        lobby_id = slot.identity.lobby_id
        if slot.status is Status.WAITING and lobby_id is not None:
            value = slot.lobby_entry().model_dump_json()
            items.append(PresenceItem(lobby_scope(lobby_id), slot.pid, value))
        return items

    async def _resync(self) -> None:
        """The broker lost its state (e.g. Redis restarted): re-announce everything we hold."""
        log.info("broker reconnected: re-announcing %d rooms", len(self._rooms))
        await self._refresh(announce=True)
        # Capture pushes from other processes may have been lost meanwhile: have panels re-read.
        for room in list(self._rooms.values()):
            room.tell_clinicians(CaptureChanged(visit_id=room.visit_id, reason="resync"))
        await self.lobby.resync()
