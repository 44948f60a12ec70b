"""A real aiortc sender for tests: a synthetic, asymmetric, 'expressive' camera."""

from __future__ import annotations

import asyncio
import math
import random
import time
from typing import Any

import av
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
from PIL import Image, ImageDraw

from telehealth.capture.serverpeer import ServerCapturePeer

PHASES = 24  # distinct expression levels pre-rendered (rendering per frame is too slow)


def render(width: int, height: int, level: float, seed: int = 7) -> Image.Image:
    """Textured grey scene, a bright marker on the LEFT edge, a 'mouth' opening with level."""
    rnd = random.Random(seed)
    image = Image.new("RGB", (width, height), (90, 90, 90))
    draw = ImageDraw.Draw(image)
    for _ in range(400):  # texture so that sharpness (Laplacian variance) is meaningful
        x, y = rnd.randrange(width), rnd.randrange(height)
        shade = rnd.randrange(40, 200)
        draw.rectangle([x, y, x + 6, y + 6], fill=(shade, shade, shade))
    draw.rectangle([0, height // 3, width // 8, 2 * height // 3], fill=(255, 255, 255))
    cx, cy = width // 2, height // 2
    half_w, half_h = width // 8, int(level * height / 5)
    if half_h:
        draw.rectangle([cx - half_w, cy - half_h, cx + half_w, cy + half_h], fill=(20, 20, 20))
    return image


def expression_level(since_start: float) -> float:
    """Rest 0.5 s, rise to the peak at 1.5 s, hold 0.3 s, relax by 2.5 s."""
    if since_start < 0.5 or since_start > 2.5:
        return 0.0
    if since_start < 1.5:
        return (since_start - 0.5) / 1.0
    if since_start < 1.8:
        return 1.0
    return 1.0 - (since_start - 1.8) / 0.7


class ExpressiveTrack(VideoStreamTrack):
    """Rest until ``expression_start`` (monotonic) is set, then one rest-peak-relax movement."""

    def __init__(self, width: int = 640, height: int = 480) -> None:
        super().__init__()
        self.expression_start: float | None = None
        self.half_size_after: float | None = None  # monotonic: then send at half resolution
        self._frames = [av.VideoFrame.from_image(render(width, height, i / (PHASES - 1))) for i in range(PHASES)]
        self._small = [
            av.VideoFrame.from_image(render(width // 2, height // 2, i / (PHASES - 1))) for i in range(PHASES)
        ]

    async def recv(self) -> Any:
        pts, time_base = await self.next_timestamp()
        level = 0.0
        if self.expression_start is not None:
            level = expression_level(time.monotonic() - self.expression_start)
        small = self.half_size_after is not None and time.monotonic() >= self.half_size_after
        frames = self._small if small else self._frames
        frame = frames[min(PHASES - 1, math.floor(level * (PHASES - 1) + 0.5))]
        out = frame.reformat()  # a fresh frame object: aiortc sets pts on it
        out.pts, out.time_base = pts, time_base
        return out


async def connect(peer: ServerCapturePeer, track: VideoStreamTrack) -> RTCPeerConnection:
    """Offer from an aiortc sender (sendonly video) to the server peer; return the sender pc."""
    sender = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    sender.addTransceiver(track, direction="sendonly")
    await sender.setLocalDescription(await sender.createOffer())
    answer = await peer.answer(sender.localDescription.sdp)
    await sender.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    return sender


async def settle(seconds: float) -> None:
    """Let the stream run."""
    await asyncio.sleep(seconds)
