"""One WebSocket: validated reads with rate limits, and one writer task on a bounded queue."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from typing import Any

from aiohttp import WSMsgType, web

from telehealth.signaling.codec import ProtocolError, decode_client, encode
from telehealth.signaling.config import SignalingSettings
from telehealth.signaling.messages import Error, ErrorCode, Message
from telehealth.signaling.outbox import CloseCode
from telehealth.signaling.ratelimit import TokenBucket

log = logging.getLogger(__name__)

_STRIKE_REFILL = 0.1  # one forgiven strike per 10 s
_CLOSE_TIMEOUT = 5.0


class TaggedLog(logging.LoggerAdapter[logging.Logger]):
    """Prefixes every line with the visit (or lobby) and connection ids."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        """Add the tag."""
        extra = self.extra or {}
        return f"[{extra.get('scope')} conn={extra.get('conn')}] {msg}", kwargs


class Connection:
    """Reads typed messages from, and queues frames to, one prepared WebSocket."""

    def __init__(self, ws: web.WebSocketResponse, settings: SignalingSettings, scope: str) -> None:
        self.ws = ws
        self.settings = settings
        self.log = TaggedLog(log, {"scope": scope, "conn": secrets.token_hex(3)})
        self._queue: asyncio.Queue[str | None] = asyncio.Queue(settings.send_queue_size)
        self._rate = TokenBucket(settings.rate_per_second, settings.rate_burst)
        self._strikes = TokenBucket(_STRIKE_REFILL, settings.max_strikes)
        self._close: tuple[CloseCode, str] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._aborter: asyncio.Task[None] | None = None
        # The close code the browser sent, if it closed the socket itself (1001: page unloaded).
        self.peer_close_code: int | None = None

    @property
    def closing(self) -> bool:
        """True once a close has been requested."""
        return self._close is not None

    def start(self) -> None:
        """Start the writer task."""
        self._writer = asyncio.create_task(self._write_loop(), name="signaling-writer")

    # --- sending ------------------------------------------------------------------------------

    def send(self, message: Message) -> None:
        """Queue a message; a client that cannot keep up is disconnected, not buffered."""
        if self._close is not None:
            return
        try:
            self._queue.put_nowait(encode(message))
        except asyncio.QueueFull:
            self.log.warning("send queue full: disconnecting slow client")
            self._abort(CloseCode.SLOW_CLIENT, "too slow")

    def close(self, code: CloseCode, reason: str) -> None:
        """Flush what is queued, then close with code; idempotent."""
        if self._close is not None:
            return
        self._close = (code, reason)
        try:
            self._queue.put_nowait(None)
        except asyncio.QueueFull:
            self._close = None
            self._abort(code, reason)

    def _abort(self, code: CloseCode, reason: str) -> None:
        # The queue is full, so the writer is stuck on this client: close without draining.
        self._close = (code, reason)
        if self._writer is not None:
            self._writer.cancel()
        self._aborter = asyncio.create_task(self._close_ws(drain=False), name="signaling-abort")

    async def _write_loop(self) -> None:
        while (frame := await self._queue.get()) is not None:
            try:
                await self.ws.send_str(frame)
            except ConnectionError:
                return  # the reader notices the closed socket and ends the session
        await self._close_ws(drain=True)

    async def _close_ws(self, *, drain: bool) -> None:
        code, reason = self._close or (CloseCode.NORMAL, "")
        try:
            async with asyncio.timeout(_CLOSE_TIMEOUT):
                await self.ws.close(code=code, message=reason.encode(), drain=drain)
        except (TimeoutError, ConnectionError):
            pass

    def send_error(self, error: ProtocolError) -> None:
        """Send an error frame."""
        self.send(Error(code=error.code, message=error.message, ref=error.ref))

    def reject(self, error: ProtocolError, *, strike: bool = True) -> None:
        """Answer a bad message with an error frame; repeated abuse closes the connection."""
        self.send_error(error)
        if strike and not self._strikes.take():
            self.log.warning("closing after repeated rejected messages (last: %s)", error.code)
            self.close(CloseCode.ABUSE, "too many rejected messages")

    # --- receiving ----------------------------------------------------------------------------

    async def receive(self) -> Message | None:
        """The next valid message, or None once the socket is closing."""
        while not self.ws.closed:
            frame = await self.ws.receive()
            if frame.type is WSMsgType.TEXT:
                if not self._rate.take():
                    self.reject(ProtocolError(ErrorCode.RATE_LIMITED, "slow down"))
                    continue
                try:
                    return decode_client(frame.data, self.settings.max_message_bytes)
                except ProtocolError as exc:
                    self.reject(exc)
            elif frame.type is WSMsgType.BINARY:
                self.reject(ProtocolError(ErrorCode.BAD_JSON, "send JSON text frames"))
            elif frame.type is WSMsgType.ERROR:
                self.log.info("socket error: %s", self.ws.exception())
                return None
            else:
                if frame.type is WSMsgType.CLOSE:
                    self.peer_close_code = int(frame.data)
                return None  # CLOSE, CLOSING, CLOSED
        return None

    async def flushed(self) -> None:
        """Wait until the writer has sent everything queued and closed the socket."""
        if self._writer is not None:
            await asyncio.wait({self._writer})  # asyncio.wait never cancels the writer

    async def finish(self) -> None:
        """Stop the writer and make sure the socket is closed."""
        if self._close is None:
            self.close(CloseCode.NORMAL, "")
        tasks = [t for t in (self._writer, self._aborter) if t is not None]
        try:
            async with asyncio.timeout(_CLOSE_TIMEOUT + 1):
                await asyncio.gather(*tasks, return_exceptions=True)
        except TimeoutError:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if not self.ws.closed:
            with contextlib.suppress(TimeoutError, ConnectionError):
                await self._close_ws(drain=False)
