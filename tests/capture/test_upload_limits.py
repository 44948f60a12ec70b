"""Decoded-pixel limits hold before anything big is decoded: image and video bombs are refused."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import av
import pytest
from PIL import Image

from telehealth.capture.uploads import UploadLimits, prepare_clip, prepare_still
from telehealth.records.errors import TooLarge


def _png(path: Path, width: int, height: int) -> Path:
    # A flat colour compresses to a few hundred KB however large it decodes.
    Image.new("L", (width, height), 128).save(path, "PNG", optimize=True)
    return path


def _webm(path: Path, width: int, height: int) -> Path:
    with av.open(str(path), "w", format="webm") as container:
        stream = container.add_stream("libvpx", rate=30)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        frame = av.VideoFrame(width, height, "yuv420p")
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        frame.pts, frame.time_base = 0, Fraction(1, 30)
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    return path


def test_a_small_png_that_decodes_to_40_megapixels_is_refused(tmp_path: Path) -> None:
    bomb = _png(tmp_path / "bomb.png", 6300, 6300)
    assert bomb.stat().st_size < 1024 * 1024
    with pytest.raises(TooLarge):
        prepare_still(bomb, "image/png", UploadLimits())


def test_a_phone_sized_still_is_accepted(tmp_path: Path) -> None:
    still = prepare_still(_png(tmp_path / "ok.png", 4032, 3024), "image/png", UploadLimits())
    assert (still.width, still.height) == (4032, 3024)
    assert Image.open(io.BytesIO(still.png)).size == (4032, 3024)


def test_a_clip_larger_than_4k_is_refused(tmp_path: Path) -> None:
    clip = _webm(tmp_path / "big.webm", 4800, 4800)
    with pytest.raises(TooLarge):
        prepare_clip(clip, "video/webm", tmp_path / "out.webm", UploadLimits())
    assert not (tmp_path / "out.webm").exists()


def test_a_4k_clip_is_accepted(tmp_path: Path) -> None:
    clip = _webm(tmp_path / "uhd.webm", 3840, 2160)
    prepared = prepare_clip(clip, "video/webm", tmp_path / "out.webm", UploadLimits())
    assert (prepared.width, prepared.height) == (3840, 2160)
