"""Validation of device uploads: the patient's own camera stills and clips.

A body is streamed to a temporary file (never held whole in memory), its real type is
sniffed from magic bytes, and only a cleaned copy is stored: stills are re-encoded by Pillow
(metadata dropped, EXIF orientation applied, never mirrored), clips are stream-copied by
PyAV into a fresh container (video stream only: container metadata such as a phone's GPS
atom, audio and any other stream are left behind). Everything blocking runs in an executor.
"""

from __future__ import annotations

import asyncio
import io
import logging
import shutil
import tempfile
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import av
from aiohttp import ClientError, StreamReader
from aiohttp.http_exceptions import HttpProcessingError
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from telehealth.records.errors import InvalidInput, TooLarge, UnsupportedMedia
from telehealth.settings import Settings

from .quality import assess_still
from .thumbnail import thumbnail_of

__all__ = [
    "IMAGE_TYPES",
    "VIDEO_TYPES",
    "PreparedClip",
    "PreparedStill",
    "UploadIncomplete",
    "UploadLimits",
    "declared_type",
    "prepare_clip",
    "prepare_still",
    "receive_body",
    "remove_dir",
    "sniff",
    "upload_dir",
]

log = logging.getLogger(__name__)

IMAGE_TYPES = frozenset({"image/jpeg", "image/png"})
VIDEO_TYPES = frozenset({"video/webm", "video/mp4"})
_CHUNK = 256 * 1024
_WRITE_BATCH = 1024 * 1024  # bytes buffered before one executor write: bounded memory, few hops
_VIDEO_CODECS = frozenset({"vp8", "vp9", "h264", "av1"})
_CONTAINER = {"video/webm": "webm", "video/mp4": "mp4"}
STILL_BYTES = 25 * 1024 * 1024


class UploadIncomplete(InvalidInput):
    """The body ended before its declared length, or the connection broke midway."""

    code = "upload_incomplete"


@dataclass(frozen=True, slots=True)
class UploadLimits:
    """Size and shape limits of device uploads."""

    still_bytes: int = STILL_BYTES
    clip_bytes: int = 200 * 1024 * 1024
    # Decoded size, checked from the header before decoding: a 12 MP phone photo fits; a 40 MP
    # PNG bomb of 128 KB would take about 450 MB to decode and clean.
    max_pixels: int = 12_500_000
    max_video_pixels: int = 4096 * 2160  # DCI 4K; MediaRecorder clips are the camera's video size
    min_long_side: int = 320
    min_short_side: int = 240
    max_clip_seconds: float = 180.0  # the longest step is 60 s; room for a slow start and stop

    def __post_init__(self) -> None:
        if min(self.still_bytes, self.clip_bytes, self.max_pixels, self.max_video_pixels) <= 0:
            raise ValueError("upload limits must be positive")
        if self.max_clip_seconds <= 0:
            raise ValueError("upload limits must be positive")

    @classmethod
    def from_settings(cls, settings: Settings) -> UploadLimits:
        """Clips are capped by the app's max_upload_bytes; stills at 25 MB or that, if lower."""
        return cls(still_bytes=min(STILL_BYTES, settings.max_upload_bytes), clip_bytes=settings.max_upload_bytes)

    def for_type(self, content_type: str) -> int:
        """The byte limit for a declared content type."""
        return self.still_bytes if content_type in IMAGE_TYPES else self.clip_bytes


def declared_type(header: str | None) -> str:
    """The bare media type of a Content-Type header (codecs parameters allowed), if accepted."""
    bare = (header or "").split(";", 1)[0].strip().lower()
    if bare not in IMAGE_TYPES | VIDEO_TYPES:
        raise UnsupportedMedia(
            f"unsupported Content-Type {bare or '(none)'!r}; send image/jpeg, image/png, video/webm or video/mp4"
        )
    return bare


def sniff(head: bytes) -> str | None:
    """The media type the first bytes prove, or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm"  # EBML; the container check below tells WebM from other Matroska
    if head[4:8] == b"ftyp":
        return "video/mp4"
    return None


def upload_dir(var_dir: Path) -> Path:
    """A fresh private working directory for one upload (blocking: call in an executor)."""
    base = var_dir / "uploads"
    base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=base, prefix="up-"))


def remove_dir(path: Path) -> None:
    """Delete an upload's working directory (blocking: call in an executor)."""
    shutil.rmtree(path, ignore_errors=True)


async def receive_body(
    stream: StreamReader,
    dest: Path,
    *,
    limit: int,
    declared_length: int | None,
    executor: Executor,
) -> bytes:
    """Stream the body into ``dest``; return its first bytes. Raises TooLarge or UploadIncomplete."""
    if declared_length is not None and declared_length > limit:
        raise TooLarge(f"upload larger than {limit} bytes")
    loop = asyncio.get_running_loop()
    f: BinaryIO = await loop.run_in_executor(executor, dest.open, "wb")
    total, head, buffer = 0, b"", bytearray()
    try:
        while True:
            try:
                chunk = await stream.read(_CHUNK)
            except (ClientError, ConnectionError, HttpProcessingError, asyncio.IncompleteReadError) as exc:
                raise UploadIncomplete("the upload was cut off; nothing was stored, please retry") from exc
            if not chunk:
                break
            total += len(chunk)
            if total > limit:
                raise TooLarge(f"upload larger than {limit} bytes")
            if len(head) < 16:
                head += chunk[: 16 - len(head)]
            buffer += chunk
            if len(buffer) >= _WRITE_BATCH:
                await loop.run_in_executor(executor, f.write, bytes(buffer))
                buffer.clear()
        if buffer:
            await loop.run_in_executor(executor, f.write, bytes(buffer))
    finally:
        await loop.run_in_executor(executor, f.close)
    if declared_length is not None and total != declared_length:
        raise UploadIncomplete(f"received {total} of {declared_length} bytes; nothing was stored, please retry")
    if total == 0:
        raise InvalidInput("empty upload")
    return head


@dataclass(frozen=True, slots=True)
class PreparedStill:
    """A cleaned still ready to store."""

    png: bytes
    thumbnail: bytes
    width: int
    height: int
    quality: dict[str, Any]


def _to_srgb(image: Image.Image) -> Image.Image:
    """Apply an embedded ICC profile (phones shoot Display P3) so dropping it keeps the colours."""
    icc = image.info.get("icc_profile")
    if not icc or image.mode not in ("RGB", "RGBA"):
        return image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        converted = ImageCms.profileToProfile(image.convert("RGB"), source, ImageCms.createProfile("sRGB"))
    except (ImageCms.PyCMSError, OSError, ValueError):
        log.info("upload: unusable ICC profile ignored")
        return image
    return converted if converted is not None else image


def prepare_still(path: Path, content_type: str, limits: UploadLimits) -> PreparedStill:
    """Check and re-encode an uploaded still as PNG without any metadata. Blocking."""
    expected = {"image/jpeg": "JPEG", "image/png": "PNG"}[content_type]
    try:
        with Image.open(path, formats=[expected]) as opened:
            width, height = opened.size  # from the header: refuse bombs before decoding
            if width * height > limits.max_pixels:
                raise TooLarge(f"image of {width}x{height} is above {limits.max_pixels} pixels")
            # EXIF orientation is how the camera meant the picture; apply it, add no flip.
            upright = ImageOps.exif_transpose(opened)
            upright.load()
    except UnidentifiedImageError as exc:
        raise UnsupportedMedia(f"the body is not a valid {content_type} image") from exc
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise UnsupportedMedia(f"the {content_type} image could not be decoded") from exc
    long_side, short_side = max(upright.size), min(upright.size)
    if long_side < limits.min_long_side or short_side < limits.min_short_side:
        raise UnsupportedMedia(
            f"image of {upright.width}x{upright.height} is below {limits.min_long_side}x{limits.min_short_side}"
        )
    clean = _to_srgb(upright)
    if clean.mode not in ("RGB", "L"):
        clean = clean.convert("RGB")  # alpha, palette, CMYK: a clinical photo is plain RGB
    clean.info.clear()  # EXIF, GPS, XMP, comments, ICC: none of it is written
    out = io.BytesIO()
    clean.save(out, "PNG", compress_level=3)  # lossless; 3 keeps a 12 MP photo to about a second
    return PreparedStill(
        png=out.getvalue(),
        thumbnail=thumbnail_of(clean),
        width=clean.width,
        height=clean.height,
        quality=assess_still(clean, clean.width, clean.height, source="device"),
    )


@dataclass(frozen=True, slots=True)
class PreparedClip:
    """A remuxed clip ready to store."""

    path: Path
    content_type: str
    width: int
    height: int
    duration_ms: int
    frames: int


def _decoder_name(stream: Any) -> str:
    name = str(stream.codec_context.name)
    return "av1" if name in ("libdav1d", "libaom-av1") else name


def prepare_clip(path: Path, content_type: str, dest: Path, limits: UploadLimits) -> PreparedClip:
    """Check an uploaded clip and stream-copy its video into a clean container at ``dest``. Blocking."""
    try:
        return _remux(path, content_type, dest, limits)
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        raise UnsupportedMedia(f"the body is not a playable {content_type} clip") from exc


def _check_video_pixels(width: int, height: int, limits: UploadLimits) -> None:
    if width * height > limits.max_video_pixels:
        raise TooLarge(f"video of {width}x{height} is above {limits.max_video_pixels} pixels")


def _remux(path: Path, content_type: str, dest: Path, limits: UploadLimits) -> PreparedClip:
    container = _CONTAINER[content_type]
    with av.open(str(path), mode="r") as src:
        if container not in src.format.name.split(","):
            raise UnsupportedMedia(f"the body is {src.format.name}, not {content_type}")
        if not src.streams.video:
            raise UnsupportedMedia("the clip has no video stream")
        video = src.streams.video[0]
        _check_video_pixels(video.codec_context.width, video.codec_context.height, limits)  # header: before decoding
        codec = _decoder_name(video)
        if codec not in _VIDEO_CODECS:
            raise UnsupportedMedia(f"video codec {codec} is not accepted (vp8, vp9, h264, av1)")
        size: tuple[int, int] | None = None
        frames, first, last = 0, None, None
        options = {"movflags": "+faststart"} if container == "mp4" else {}
        with av.open(str(dest), mode="w", format=container, options=options) as out:
            copy = out.add_stream_from_template(video)
            for packet in src.demux(video):
                if packet.pts is None or packet.size == 0:
                    continue  # flush packets carry nothing to copy
                if size is None:
                    _check_video_pixels(video.codec_context.width, video.codec_context.height, limits)
                    for frame in video.codec_context.decode(packet):
                        size = (frame.width, frame.height)  # proves the stream really decodes
                        _check_video_pixels(frame.width, frame.height, limits)
                        break
                end = packet.pts + (packet.duration or 0)
                first = packet.pts if first is None else min(first, packet.pts)
                last = end if last is None else max(last, end)
                if packet.dts is None:
                    packet.dts = packet.pts
                packet.stream = copy
                out.mux(packet)
                frames += 1
            if size is None and frames:
                for frame in video.codec_context.decode(None):  # flush: decoders may hold frames back
                    size = (frame.width, frame.height)
                    break
    if size is None or first is None or last is None:
        raise UnsupportedMedia("the clip holds no decodable video frame")
    if video.time_base is None:
        raise UnsupportedMedia("the clip's video stream has no time base")
    seconds = float((last - first) * video.time_base)
    if not 0 < seconds <= limits.max_clip_seconds:
        raise UnsupportedMedia(f"clip duration {seconds:.1f} s is outside (0, {limits.max_clip_seconds:.0f}] s")
    return PreparedClip(dest, content_type, size[0], size[1], round(seconds * 1000), frames)
