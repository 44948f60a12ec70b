"""The broker seam between processes, and its in-process implementation (the default)."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from telehealth.signaling.codec import BusFrame

log = logging.getLogger(__name__)

FrameHandler = Callable[[BusFrame], None]
ResyncHook = Callable[[], Awaitable[None]]


class BrokerUnavailable(Exception):
    """The broker cannot publish or store right now (e.g. Redis is restarting)."""


@dataclass(frozen=True, slots=True)
class PresenceItem:
    """One member's presence value in a scope (a visit or a lobby)."""

    scope: str
    member: str
    value: str


class Subscription(Protocol):
    """A live subscription; close it when its owner goes away."""

    async def close(self) -> None:
        """Stop delivering frames to this subscription's handler."""
        ...


class Broker(Protocol):
    """Fan-out of bus frames per channel, plus presence entries that expire unless refreshed."""

    @property
    def node_id(self) -> str:
        """This process's id; frames carry it so a process can skip its own room frames."""
        ...

    async def start(self) -> None:
        """Connect and start background work."""
        ...

    async def close(self) -> None:
        """Stop background work and release connections."""
        ...

    async def subscribe(self, channel: str, handler: FrameHandler) -> Subscription:
        """Deliver the channel's frames to handler; returns once the subscription is active."""
        ...

    async def publish(self, channel: str, frame: BusFrame) -> None:
        """Send a frame to every subscriber of channel, or raise BrokerUnavailable."""
        ...

    async def set_presence(self, items: Iterable[PresenceItem], ttl: float) -> None:
        """Store or refresh presence entries, each expiring after ttl seconds."""
        ...

    async def remove_presence(self, scope: str, member: str) -> None:
        """Drop one presence entry."""
        ...

    async def presence(self, scopes: Iterable[str]) -> dict[str, dict[str, str]]:
        """Live presence entries (member -> value) for each scope."""
        ...

    def on_resync(self, hook: ResyncHook) -> None:
        """Call hook after the broker reconnected, so owners re-announce what it forgot."""
        ...


class _LocalSubscription:
    def __init__(self, broker: InProcessBroker, channel: str, handler: FrameHandler) -> None:
        self._broker = broker
        self._channel = channel
        self._handler = handler

    async def close(self) -> None:
        """Stop delivering frames to this subscription's handler."""
        self._broker.unsubscribe(self._channel, self._handler)


def deliver(handlers: Iterable[FrameHandler], frame: BusFrame) -> None:
    """Call each handler; one failing handler must not starve the others."""
    for handler in handlers:
        try:
            handler(frame)
        except Exception:
            log.exception("bus handler failed for %s", frame.message.TYPE)


class InProcessBroker:
    """Broker for a single process: synchronous fan-out, presence in a dict."""

    def __init__(self, node_id: str | None = None) -> None:
        self._node_id = node_id or uuid.uuid4().hex[:12]
        self._handlers: dict[str, list[FrameHandler]] = {}
        self._presence: dict[str, dict[str, tuple[str, float]]] = {}

    @property
    def node_id(self) -> str:
        """This process's id."""
        return self._node_id

    async def start(self) -> None:
        """Nothing to connect."""

    async def close(self) -> None:
        """Forget all subscriptions and presence."""
        self._handlers.clear()
        self._presence.clear()

    async def subscribe(self, channel: str, handler: FrameHandler) -> Subscription:
        """Deliver the channel's frames to handler."""
        self._handlers.setdefault(channel, []).append(handler)
        return _LocalSubscription(self, channel, handler)

    def unsubscribe(self, channel: str, handler: FrameHandler) -> None:
        """Remove one handler of a channel."""
        handlers = self._handlers.get(channel, [])
        if handler in handlers:
            handlers.remove(handler)
        if not handlers:
            self._handlers.pop(channel, None)

    async def publish(self, channel: str, frame: BusFrame) -> None:
        """Deliver synchronously to the channel's handlers."""
        deliver(tuple(self._handlers.get(channel, ())), frame)

    async def set_presence(self, items: Iterable[PresenceItem], ttl: float) -> None:
        """Store entries with a monotonic deadline."""
        deadline = time.monotonic() + ttl
        for item in items:
            self._presence.setdefault(item.scope, {})[item.member] = (item.value, deadline)

    async def remove_presence(self, scope: str, member: str) -> None:
        """Drop one entry."""
        entries = self._presence.get(scope)
        if entries is not None:
            entries.pop(member, None)
            if not entries:
                del self._presence[scope]

    async def presence(self, scopes: Iterable[str]) -> dict[str, dict[str, str]]:
        """Unexpired entries per scope."""
        now = time.monotonic()
        result: dict[str, dict[str, str]] = {}
        for scope in scopes:
            entries = self._presence.get(scope, {})
            result[scope] = {m: v for m, (v, dl) in entries.items() if dl > now}
        return result

    def on_resync(self, hook: ResyncHook) -> None:
        """An in-process broker never loses state, so there is nothing to resync."""
