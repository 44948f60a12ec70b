"""Per-connection handlers: authenticate within the timeout, then dispatch by message type."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from telehealth.signaling import resumetoken
from telehealth.signaling.broker import BrokerUnavailable
from telehealth.signaling.codec import ProtocolError
from telehealth.signaling.connection import Connection
from telehealth.signaling.hub import Hub
from telehealth.signaling.identity import Identity
from telehealth.signaling.messages import (
    Admit,
    Auth,
    Chat,
    Decline,
    ErrorCode,
    Hangup,
    IceServers,
    Message,
    Remove,
    Resume,
)
from telehealth.signaling.outbox import CloseCode
from telehealth.signaling.participant import Slot
from telehealth.signaling.revocation import SessionWatch
from telehealth.websecurity import SESSION_COOKIE, same_origin

Command = Callable[[Hub, Slot, Any], Awaitable[None]]


async def _ice_servers(hub: Hub, slot: Slot, message: IceServers) -> None:
    hub.send_ice_servers(slot)


# Non-relayed client commands; relayed types (Message.RELAY) need no entry here.
COMMANDS: dict[type[Message], Command] = {
    Admit: Hub.admit,
    Decline: Hub.decline,
    Hangup: Hub.hangup,
    Remove: Hub.remove,
    Chat: Hub.chat,
    IceServers: _ice_servers,
}


def cookie_origin_ok(request: web.Request, trusted: tuple[str, ...]) -> bool:
    """Sockets that authenticate with the session cookie need this site's Origin: blocks CSWSH."""
    return same_origin(request, trusted, missing_ok=False)


async def first_message(conn: Connection, deadline: float) -> Auth | Resume | None:
    """Wait for the credential message; anything else is rejected until the deadline."""
    try:
        async with asyncio.timeout(deadline):
            while (message := await conn.receive()) is not None:
                if isinstance(message, Auth | Resume):
                    return message
                conn.reject(ProtocolError(ErrorCode.NOT_AUTHENTICATED, "send auth first", message.id))
    except TimeoutError:
        conn.log.info("no credentials within %.0f s", deadline)
        conn.close(CloseCode.AUTH_TIMEOUT, "authentication timeout")
    return None


def refuse(conn: Connection, error: ProtocolError, code: CloseCode) -> None:
    """Explain why, then close."""
    conn.send_error(error)
    conn.close(code, error.message[:100])


class VisitSession:
    """The life of one visit socket: auth phase, command phase, release in `finally`."""

    def __init__(
        self, hub: Hub, conn: Connection, request: web.Request, visit_id: str, watch: SessionWatch | None = None
    ) -> None:
        self.hub = hub
        self.conn = conn
        self.request = request
        self.visit_id = visit_id
        self.watch = watch or SessionWatch()

    async def run(self) -> None:
        """Serve the socket until it closes."""
        first = await first_message(self.conn, self.hub.settings.auth_timeout)
        if first is None:
            return
        slot = await self._authenticate(first)
        if slot is None:
            return
        self.conn.log.info("%s joined as %s (%s)", slot.pid, slot.identity.role, slot.status)
        self.watch.watch(slot.identity.session_id, self.conn)
        try:
            await self._commands(slot)
        finally:
            self.watch.unwatch(slot.identity.session_id, self.conn)
            away = self.conn.peer_close_code == CloseCode.GOING_AWAY
            self.hub.detach(slot, self.conn, away=away)

    async def _authenticate(self, first: Auth | Resume) -> Slot | None:
        try:
            if isinstance(first, Resume):
                claim = resumetoken.verify(self.hub.settings.resume_secret, first.resume_token)
                if claim is not None and not await self.watch.active(claim.identity.session_id):
                    raise ProtocolError(ErrorCode.RESUME_FAILED, "the session has ended; sign in again")
                return await self.hub.resume(first.resume_token, self.conn, self.visit_id)
            identity = await self._identity(first)
            if identity is None:
                return None
            return await self.hub.join(identity, self.conn)
        except ProtocolError as exc:
            exc.ref = first.id
            retry = exc.code is ErrorCode.UNAVAILABLE
            refuse(self.conn, exc, CloseCode.TRY_AGAIN if retry else CloseCode.AUTH_FAILED)
            return None

    async def _identity(self, auth: Auth) -> Identity | None:
        gateway = self.hub.gateway
        if auth.session:
            if not cookie_origin_ok(self.request, self.hub.settings.allowed_origins):
                self.conn.log.warning("clinician socket from foreign origin refused")
                error = ProtocolError(ErrorCode.FORBIDDEN, "cross-origin socket", auth.id)
                refuse(self.conn, error, CloseCode.ORIGIN_REJECTED)
                return None
            cookie = self.request.cookies.get(SESSION_COOKIE, "")
            identity = None
            if cookie:
                identity = await gateway.authenticate_clinician(cookie, self.visit_id)
        else:
            assert auth.token is not None
            identity = await gateway.authenticate_patient(auth.token)
        if identity is None or identity.visit_id != self.visit_id:
            error = ProtocolError(ErrorCode.AUTH_FAILED, "credentials refused", auth.id)
            refuse(self.conn, error, CloseCode.AUTH_FAILED)
            return None
        return identity

    async def _commands(self, slot: Slot) -> None:
        while (message := await self.conn.receive()) is not None:
            try:
                await self._dispatch(slot, message)
            except ProtocolError as exc:
                exc.ref = exc.ref or message.id
                # Only the sender's own mistakes count towards closing its socket.
                self.conn.reject(exc, strike=exc.code is not ErrorCode.UNAVAILABLE and not exc.stale)

    async def _dispatch(self, slot: Slot, message: Message) -> None:
        if message.RELAY:
            await self.hub.relay(slot, message)
            return
        command = COMMANDS.get(type(message))
        if command is not None:
            await command(self.hub, slot, message)
        elif isinstance(message, Auth | Resume):
            raise ProtocolError(ErrorCode.ALREADY_AUTHENTICATED, "already authenticated")
        else:
            raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"{message.TYPE} is not a command")


class LobbySession:
    """A clinician dashboard socket: auth by session, then a live feed of waiting patients."""

    def __init__(self, hub: Hub, conn: Connection, request: web.Request, watch: SessionWatch | None = None) -> None:
        self.hub = hub
        self.conn = conn
        self.request = request
        self.watch = watch or SessionWatch()

    async def run(self) -> None:
        """Serve the socket until it closes."""
        first = await first_message(self.conn, self.hub.settings.auth_timeout)
        if first is None:
            return
        lobby_id = await self._authenticate(first)
        if lobby_id is None:
            return
        session_id = await self.watch.session_of(self.request.cookies.get(SESSION_COOKIE, ""))
        self.watch.watch(session_id, self.conn)
        try:
            await self.hub.lobby.watch(lobby_id, self.conn)
        except BrokerUnavailable:
            error = ProtocolError(ErrorCode.UNAVAILABLE, "lobby feed unavailable", first.id)
            refuse(self.conn, error, CloseCode.TRY_AGAIN)
            return
        try:
            while (message := await self.conn.receive()) is not None:
                error = ProtocolError(ErrorCode.UNKNOWN_TYPE, "lobby sockets only listen")
                error.ref = message.id
                self.conn.reject(error)
        finally:
            self.watch.unwatch(session_id, self.conn)
            await self.hub.lobby.unwatch(lobby_id, self.conn)

    async def _authenticate(self, first: Auth | Resume) -> str | None:
        if not isinstance(first, Auth) or not first.session:
            error = ProtocolError(ErrorCode.AUTH_FAILED, "lobby needs a session", first.id)
            refuse(self.conn, error, CloseCode.AUTH_FAILED)
            return None
        if not cookie_origin_ok(self.request, self.hub.settings.allowed_origins):
            error = ProtocolError(ErrorCode.FORBIDDEN, "cross-origin socket", first.id)
            refuse(self.conn, error, CloseCode.ORIGIN_REJECTED)
            return None
        cookie = self.request.cookies.get(SESSION_COOKIE, "")
        lobby_id = await self.hub.gateway.clinician_for_lobby(cookie) if cookie else None
        if lobby_id is None:
            error = ProtocolError(ErrorCode.AUTH_FAILED, "credentials refused", first.id)
            refuse(self.conn, error, CloseCode.AUTH_FAILED)
        return lobby_id
