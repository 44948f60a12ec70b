"""Live waiting-room feeds for clinician dashboards, shared across processes via the broker."""

from __future__ import annotations

import asyncio
import logging
from functools import partial

from pydantic import ValidationError

from telehealth.signaling.broker import Broker, Subscription
from telehealth.signaling.codec import BusFrame
from telehealth.signaling.messages import Lobby, LobbyEntry, LobbyUpdate
from telehealth.signaling.outbox import Outbox

log = logging.getLogger(__name__)


def lobby_scope(lobby_id: str) -> str:
    """Broker channel and presence scope of a lobby."""
    return f"lobby:{lobby_id}"


class LobbyFeed:
    """Dashboards watching lobbies on this process; one broker subscription per lobby."""

    def __init__(self, broker: Broker) -> None:
        self._broker = broker
        self._watchers: dict[str, set[Outbox]] = {}
        self._subscriptions: dict[str, Subscription] = {}
        # Dashboards connect rarely; one lock keeps subscribe-then-snapshot ordering simple.
        self._lock = asyncio.Lock()

    async def watch(self, lobby_id: str, outbox: Outbox) -> None:
        """Subscribe first, then send the snapshot, so no update falls in between."""
        async with self._lock:
            if lobby_id not in self._subscriptions:
                handler = partial(self._on_frame, lobby_id)
                self._subscriptions[lobby_id] = await self._broker.subscribe(lobby_scope(lobby_id), handler)
            self._watchers.setdefault(lobby_id, set()).add(outbox)
        await self.send_snapshot(lobby_id, [outbox])

    async def unwatch(self, lobby_id: str, outbox: Outbox) -> None:
        """Stop feeding a dashboard; the last one unsubscribes the lobby."""
        async with self._lock:
            watchers = self._watchers.get(lobby_id, set())
            watchers.discard(outbox)
            if watchers:
                return
            self._watchers.pop(lobby_id, None)
            subscription = self._subscriptions.pop(lobby_id, None)
            if subscription is not None:
                await subscription.close()

    async def send_snapshot(self, lobby_id: str, outboxes: list[Outbox]) -> None:
        """Send the current waiting list (oldest first) to the given dashboards."""
        scope = lobby_scope(lobby_id)
        entries = (await self._broker.presence([scope]))[scope]
        waiting: list[LobbyEntry] = []
        for raw in entries.values():
            try:
                waiting.append(LobbyEntry.model_validate_json(raw))
            except ValidationError:
                log.warning("ignoring malformed lobby entry in %s", scope)
        waiting.sort(key=lambda e: e.since)
        message = Lobby(lobby_id=lobby_id, waiting=tuple(waiting))
        for outbox in outboxes:
            outbox.send(message)

    async def resync(self) -> None:
        """After the broker reconnected, give every dashboard a fresh snapshot."""
        for lobby_id, watchers in list(self._watchers.items()):
            await self.send_snapshot(lobby_id, list(watchers))

    async def close(self) -> None:
        """Drop every subscription."""
        for subscription in self._subscriptions.values():
            await subscription.close()
        self._subscriptions.clear()
        self._watchers.clear()

    def _on_frame(self, lobby_id: str, frame: BusFrame) -> None:
        if isinstance(frame.message, LobbyUpdate):
            for outbox in tuple(self._watchers.get(lobby_id, ())):
                outbox.send(frame.message)
