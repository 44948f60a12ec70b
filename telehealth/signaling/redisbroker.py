"""Redis pub/sub broker: one subscriber task per process, restarted with back-off."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import Iterable
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from telehealth.signaling.broker import (
    BrokerUnavailable,
    FrameHandler,
    PresenceItem,
    ResyncHook,
    Subscription,
    deliver,
)
from telehealth.signaling.codec import BusFrame, ProtocolError, decode_frame, encode_frame

log = logging.getLogger(__name__)

_PREFIX = "th:sig:"
_SUBSCRIBE_TIMEOUT = 3.0
_MAX_BACKOFF = 5.0
_PUBLISH_BACKLOG = 10_000
_PUBLISH_BATCH = 256
_DOWN = (RedisError, OSError, asyncio.TimeoutError)
# How long a caller waits for a pooled connection before the broker counts as unavailable.
_POOL_WAIT = 3.0


class _RedisSubscription:
    def __init__(self, broker: RedisBroker, channel: str, handler: FrameHandler) -> None:
        self._broker = broker
        self._channel = channel
        self._handler = handler

    async def close(self) -> None:
        """Stop delivering frames to this subscription's handler."""
        await self._broker.unsubscribe(self._channel, self._handler)


class RedisBroker:
    """Broker over Redis pub/sub; presence entries live in per-scope hashes."""

    def __init__(self, url: str, node_id: str | None = None, *, pool_size: int = 8) -> None:
        self._node_id = node_id or uuid.uuid4().hex[:12]
        # One quick retry absorbs a stale pooled socket after a Redis restart; more would
        # stall publishers while Redis is really down. The pool is bounded: 1,000 visits once
        # opened ~890 connections per process; now callers wait for one of ``pool_size``.
        self._pool = BlockingConnectionPool.from_url(
            url,
            max_connections=pool_size,
            timeout=_POOL_WAIT,
            retry=Retry(NoBackoff(), 1),
            socket_connect_timeout=2.0,
            socket_timeout=5.0,
            health_check_interval=0,
            client_name=f"telehealth-{self._node_id}",
        )
        self._redis: Redis = Redis(connection_pool=self._pool)
        self._handlers: dict[str, list[FrameHandler]] = {}
        self._confirm: dict[str, asyncio.Future[None]] = {}
        self._pubsub: PubSub | None = None
        self._ready = asyncio.Event()
        self._resync_hooks: list[ResyncHook] = []
        self._reader: asyncio.Task[None] | None = None
        self._resync_task: asyncio.Task[None] | None = None
        # One publisher on one connection: concurrent PUBLISH calls made the pool open a
        # connection per caller under load (each with a handshake), and batching keeps order.
        self._outgoing: asyncio.Queue[tuple[str, str, asyncio.Future[None]]] = asyncio.Queue(_PUBLISH_BACKLOG)
        self._publisher: asyncio.Task[None] | None = None

    @property
    def node_id(self) -> str:
        """This process's id."""
        return self._node_id

    @property
    def connected(self) -> bool:
        """True while the subscriber connection is up."""
        return self._ready.is_set()

    async def start(self) -> None:
        """Start the subscriber task and wait briefly for the first connection."""
        self._reader = asyncio.create_task(self._run(), name=f"redis-broker-{self._node_id}")
        self._publisher = asyncio.create_task(self._publish_loop(), name="redis-broker-publisher")
        try:
            async with asyncio.timeout(_SUBSCRIBE_TIMEOUT):
                await self._ready.wait()
        except TimeoutError:
            # Keep going: the subscriber keeps retrying and sockets get `unavailable` meanwhile.
            log.warning("redis not reachable yet; continuing and retrying in the background")

    async def close(self) -> None:
        """Cancel background tasks and close connections."""
        tasks = (self._resync_task, self._reader, self._publisher)
        for task in tasks:
            if task is not None:
                task.cancel()
        for task in tasks:
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._redis.aclose()
        await self._pool.aclose()

    def on_resync(self, hook: ResyncHook) -> None:
        """Call hook after every reconnection (not the first connection)."""
        self._resync_hooks.append(hook)

    # --- subscriptions ------------------------------------------------------------------------

    async def subscribe(self, channel: str, handler: FrameHandler) -> Subscription:
        """Deliver the channel's frames to handler; returns once Redis confirmed SUBSCRIBE."""
        handlers = self._handlers.setdefault(channel, [])
        handlers.append(handler)
        subscription = _RedisSubscription(self, channel, handler)
        if len(handlers) == 1:
            try:
                await self._subscribe_now(channel)
            except BrokerUnavailable:
                # The caller gets no subscription object, so nothing else could remove it.
                await subscription.close()
                raise
        elif channel in self._confirm:
            await self._await_confirm(channel)
        return subscription

    async def _subscribe_now(self, channel: str) -> None:
        pubsub = self._pubsub
        if pubsub is None or not self._ready.is_set():
            raise BrokerUnavailable("redis is not connected")
        self._confirm[channel] = asyncio.get_running_loop().create_future()
        try:
            await pubsub.subscribe(_PREFIX + channel)
        except _DOWN as exc:
            self._confirm.pop(channel, None)
            raise BrokerUnavailable(str(exc)) from exc
        await self._await_confirm(channel)

    async def _await_confirm(self, channel: str) -> None:
        future = self._confirm.get(channel)
        if future is None:
            return
        try:
            async with asyncio.timeout(_SUBSCRIBE_TIMEOUT):
                await asyncio.shield(future)
        except (TimeoutError, ConnectionError) as exc:
            raise BrokerUnavailable(f"subscribe to {channel} not confirmed") from exc

    async def unsubscribe(self, channel: str, handler: FrameHandler) -> None:
        """Remove one handler; the last one unsubscribes the channel."""
        handlers = self._handlers.get(channel, [])
        if handler in handlers:
            handlers.remove(handler)
        if handlers:
            return
        self._handlers.pop(channel, None)
        future = self._confirm.pop(channel, None)
        if future is not None and not future.done():
            future.cancel()
        if self._pubsub is not None and self._ready.is_set():
            # On failure the next connection will not resubscribe it anyway.
            with contextlib.suppress(*_DOWN):
                await self._pubsub.unsubscribe(_PREFIX + channel)

    # --- subscriber task ----------------------------------------------------------------------

    async def _run(self) -> None:
        backoff = 0.1
        first = True
        while True:
            pubsub = self._redis.pubsub()
            try:
                await self._connect(pubsub)
                if not first:
                    self._start_resync()
                first = False
                backoff = 0.1
                await self._read(pubsub)
            except _DOWN as exc:
                log.warning("redis subscriber lost (%s); retrying in %.1fs", exc, backoff)
            finally:
                self._ready.clear()
                self._pubsub = None
                self._fail_pending()
                await self._close_quietly(pubsub)
            await asyncio.sleep(backoff * (0.5 + random.random()))  # noqa: S311 - jitter only
            backoff = min(backoff * 2, _MAX_BACKOFF)

    async def _connect(self, pubsub: PubSub) -> None:
        # A per-node channel keeps the connection subscribed (and readable) even with no rooms.
        channels = [_PREFIX + "node:" + self._node_id] + [_PREFIX + c for c in self._handlers]
        loop = asyncio.get_running_loop()
        for channel in self._handlers:
            self._confirm[channel] = loop.create_future()
        await pubsub.subscribe(*channels)
        self._pubsub = pubsub
        self._ready.set()
        log.info("redis subscriber connected with %d channels", len(channels))

    async def _read(self, pubsub: PubSub) -> None:
        while True:
            message = await pubsub.get_message(timeout=1.0)
            if message is None:
                continue
            self._dispatch(message)

    def _dispatch(self, message: dict[str, Any]) -> None:
        raw_channel = message["channel"]
        channel = raw_channel.decode() if isinstance(raw_channel, bytes) else raw_channel
        channel = channel.removeprefix(_PREFIX)
        if message["type"] == "subscribe":
            future = self._confirm.pop(channel, None)
            if future is not None and not future.done():
                future.set_result(None)
            return
        if message["type"] != "message":
            return
        handlers = self._handlers.get(channel)
        if not handlers:
            return
        try:
            frame = decode_frame(message["data"])
        except ProtocolError as exc:
            log.warning("dropping malformed bus frame on %s: %s", channel, exc.message)
            return
        deliver(tuple(handlers), frame)

    def _fail_pending(self) -> None:
        for future in self._confirm.values():
            if not future.done():
                future.set_exception(ConnectionError("redis disconnected"))
                future.exception()  # retrieved here so nobody logs "never retrieved"
        self._confirm.clear()

    async def _close_quietly(self, pubsub: PubSub) -> None:
        with contextlib.suppress(*_DOWN):
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _start_resync(self) -> None:
        if self._resync_task is not None and not self._resync_task.done():
            self._resync_task.cancel()
        self._resync_task = asyncio.create_task(self._resync(), name="redis-broker-resync")

    async def _resync(self) -> None:
        for hook in self._resync_hooks:
            try:
                await hook()
            except Exception:
                log.exception("resync hook failed")

    # --- publishing and presence --------------------------------------------------------------

    async def publish(self, channel: str, frame: BusFrame) -> None:
        """PUBLISH the encoded frame (in order, batched), or raise BrokerUnavailable."""
        done = asyncio.get_running_loop().create_future()
        try:
            self._outgoing.put_nowait((_PREFIX + channel, encode_frame(frame), done))
        except asyncio.QueueFull:
            raise BrokerUnavailable("publish backlog is full") from None
        await done

    async def _publish_loop(self) -> None:
        while True:
            batch = [await self._outgoing.get()]
            while len(batch) < _PUBLISH_BATCH and not self._outgoing.empty():
                batch.append(self._outgoing.get_nowait())
            error: BrokerUnavailable | None = None
            try:
                if len(batch) == 1:
                    await self._redis.publish(batch[0][0], batch[0][1])
                else:
                    pipe = self._redis.pipeline(transaction=False)
                    for channel, data, _ in batch:
                        pipe.publish(channel, data)
                    await pipe.execute()
            except _DOWN as exc:
                error = BrokerUnavailable(str(exc))
            for _, _, done in batch:
                if done.done():
                    continue  # the publisher's caller was cancelled
                if error is None:
                    done.set_result(None)
                else:
                    done.set_exception(error)

    async def set_presence(self, items: Iterable[PresenceItem], ttl: float) -> None:
        """HSET each entry with its own deadline; the hash itself expires after 2 ttl."""
        deadline = time.time() + ttl
        pipe = self._redis.pipeline(transaction=False)
        scopes: set[str] = set()
        for item in items:
            pipe.hset(_PREFIX + "p:" + item.scope, item.member, f"{deadline:.3f}|{item.value}")
            scopes.add(item.scope)
        if not scopes:
            return
        for scope in scopes:
            pipe.expire(_PREFIX + "p:" + scope, int(ttl * 2) + 1)
        try:
            await pipe.execute()
        except _DOWN as exc:
            raise BrokerUnavailable(str(exc)) from exc

    async def remove_presence(self, scope: str, member: str) -> None:
        """HDEL one entry."""
        try:
            await self._redis.hdel(_PREFIX + "p:" + scope, member)  # type: ignore[misc]
        except _DOWN as exc:
            raise BrokerUnavailable(str(exc)) from exc

    async def presence(self, scopes: Iterable[str]) -> dict[str, dict[str, str]]:
        """HGETALL each scope, keeping entries whose deadline has not passed."""
        names = list(scopes)
        pipe = self._redis.pipeline(transaction=False)
        for scope in names:
            pipe.hgetall(_PREFIX + "p:" + scope)
        try:
            replies = await pipe.execute() if names else []
        except _DOWN as exc:
            raise BrokerUnavailable(str(exc)) from exc
        now = time.time()
        result: dict[str, dict[str, str]] = {}
        for scope, reply in zip(names, replies, strict=True):
            live: dict[str, str] = {}
            for member, raw in reply.items():
                deadline, _, value = raw.decode().partition("|")
                if float(deadline) > now:
                    live[member.decode()] = value
            result[scope] = live
        return result
