"""Fixtures: a real aiortc sender streaming to a real ServerCapturePeer over the host's NIC."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiortc import RTCPeerConnection

from telehealth.capture.serverpeer import ServerCapturePeer

from .sender import ExpressiveTrack, connect


@dataclass
class Call:
    peer: ServerCapturePeer
    sender: RTCPeerConnection
    track: ExpressiveTrack


@pytest.fixture
async def call() -> AsyncIterator[Call]:
    peer = ServerCapturePeer([])
    track = ExpressiveTrack(640, 480)
    sender = await connect(peer, track)
    try:
        async with asyncio.timeout(10):
            await peer.wait_receiving()
        yield Call(peer, sender, track)
    finally:
        await sender.close()
        await peer.close()
