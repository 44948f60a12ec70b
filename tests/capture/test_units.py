"""SDP hint, VP8 header parsing, WebM remux, still rule, thumbnails, passthrough pin."""

from __future__ import annotations

import io
import queue

import aiortc
import av
import pytest
from PIL import Image, ImageFilter

from telehealth.capture import passthrough
from telehealth.capture.clip import remux_webm
from telehealth.capture.frames import parse_vp8_header
from telehealth.capture.protocol import StillRule
from telehealth.capture.sdp import BitrateHint, add_bitrate_hint
from telehealth.capture.still import StillJob, finish_still
from telehealth.capture.thumbnail import make_thumbnail

from .sender import render
from .vp8data import encode

OFFER_LIKE = "\r\n".join(
    [
        "v=0",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "a=rtpmap:111 opus/48000/2",
        "a=fmtp:111 minptime=10;useinbandfec=1",
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97 98",
        "a=rtpmap:96 VP8/90000",
        "a=rtpmap:97 rtx/90000",
        "a=fmtp:97 apt=96",
        "a=rtpmap:98 VP8/90000",
        "a=fmtp:98 foo=1",
        "",
    ]
)


def test_bitrate_hint_goes_on_every_vp8_payload_only() -> None:
    out = add_bitrate_hint(OFFER_LIKE)
    hint = BitrateHint().fmtp()
    assert f"a=fmtp:96 {hint}" in out
    assert f"a=fmtp:98 foo=1;{hint}" in out
    assert "a=fmtp:97 apt=96\r\n" in out and "a=fmtp:111 minptime=10;useinbandfec=1\r\n" in out
    assert out.endswith("\r\n") and out.count("x-google-start-bitrate=2500") == 2


def test_bitrate_hint_validates() -> None:
    with pytest.raises(ValueError):
        BitrateHint(start_kbps=500, min_kbps=1500)


def test_vp8_header_reads_keyframe_size_and_rejects_garbage() -> None:
    frames = encode([render(320, 240, 0.0)] * 3)
    header = parse_vp8_header(frames[0].data)
    assert header is not None and header.keyframe and (header.width, header.height) == (320, 240)
    delta = parse_vp8_header(frames[1].data)
    assert delta is not None and not delta.keyframe
    assert parse_vp8_header(b"\x00\x00") is None
    assert parse_vp8_header(b"\x10\x02\x00\x00\x00\x00\x00\x00\x00\x00") is None  # no start code
    assert parse_vp8_header(frames[1].data[:3]) is None  # truncated first partition


def test_clip_survives_a_resolution_change_and_starts_at_zero() -> None:
    big = encode([render(640, 480, i / 30) for i in range(30)], start=10.0, rtp_origin=5000)
    small = encode([render(320, 240, i / 30) for i in range(30)], start=11.0, rtp_origin=5000 + 90_000)
    clip = remux_webm(big + small, window_start=10.5)
    assert clip.resolution_changed and (clip.width, clip.height) == (640, 480)
    assert clip.frame_count == 60 and abs(clip.duration - 2.0) < 0.05
    assert abs(clip.preroll - 0.5) < 1e-9
    with av.open(io.BytesIO(clip.data)) as container:
        packets = [p for p in container.demux(video=0) if p.size]
        assert packets[0].pts == 0 and packets[0].is_keyframe
    with av.open(io.BytesIO(clip.data)) as container:
        sizes = {(f.width, f.height) for f in container.decode(video=0)}
    assert sizes == {(640, 480), (320, 240)}


def test_clip_must_start_with_a_keyframe() -> None:
    frames = encode([render(320, 240, 0.0)] * 3)
    with pytest.raises(ValueError, match="keyframe"):
        remux_webm(frames[1:], 0.0)


def _levels() -> list[float]:
    # rest, rise to a peak at frame 20, relax
    return [0.0] * 8 + [i / 12 for i in range(1, 13)] + [1 - i / 10 for i in range(1, 11)]


def test_peak_rule_picks_the_peak_and_skips_a_blurred_peak() -> None:
    levels = _levels()
    images = [render(640, 480, level) for level in levels]
    # The true peak (frame 19, level 1.0) is motion-blurred; the rule must not pick it.
    images[19] = images[19].filter(ImageFilter.GaussianBlur(6))
    frames = encode(images, start=100.0)
    pairs = list(enumerate(frames))
    job = StillJob(StillRule.PEAK_EXPRESSION, eligible_from=100.0)
    still, scores = finish_still(job, pairs, end=200.0, window=pairs)
    chosen = round((still.timestamp - 100.0) * 30)
    assert chosen != 19 and levels[chosen] >= 0.9
    assert scores.candidates == len(frames) and scores.sharpness >= scores.sharpness_threshold
    assert (still.width, still.height) == (640, 480)


def test_sharpest_rule_and_quality_ramp() -> None:
    images = [render(640, 480, 0.0) for _ in range(20)]
    for i in range(20):
        if i != 14:
            images[i] = images[i].filter(ImageFilter.GaussianBlur(2))
    frames = encode(images, start=100.0)
    pairs = list(enumerate(frames))
    job = StillJob(StillRule.SHARPEST, eligible_from=100.2)  # frames 0-5 are in the ramp
    still, scores = finish_still(job, pairs, end=200.0, window=pairs, png=False)
    assert round((still.timestamp - 100.0) * 30) == 14
    assert still.content_type == "image/jpeg" and scores.candidates == 14


def test_winner_not_kept_decoded_is_decoded_again() -> None:
    # Every frame rises: the kept top-6 are the last six, but the window ends before them.
    frames = encode([render(640, 480, i / 29) for i in range(30)], start=100.0)
    pairs = list(enumerate(frames))
    job = StillJob(StillRule.PEAK_EXPRESSION, eligible_from=100.0)
    job.feed(pairs)
    still, _ = finish_still(job, [], end=100.0 + 15 / 30, window=pairs)
    assert round((still.timestamp - 100.0) * 30) == 15


def test_thumbnail_is_320_wide_and_upright() -> None:
    image = render(1280, 720, 0.5)
    out = io.BytesIO()
    image.save(out, "PNG")
    thumb = Image.open(io.BytesIO(make_thumbnail(out.getvalue())))
    assert thumb.format == "JPEG" and thumb.size == (320, 180)
    # A phone JPEG stored sideways with EXIF orientation 6 (rotate 90 degrees clockwise).
    exif = Image.Exif()
    exif[0x0112] = 6
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    thumb = Image.open(io.BytesIO(make_thumbnail(out.getvalue())))
    assert thumb.size == (320, 569)


def test_passthrough_refuses_other_aiortc_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    receiver = type("R", (), {})()
    receiver._RTCRtpReceiver__decoder_queue = queue.Queue()
    receiver._RTCRtpReceiver__decoder_thread = None
    monkeypatch.setattr(aiortc, "__version__", "1.17.0")
    with pytest.raises(passthrough.PassthroughUnsupported, match="pinned"):
        passthrough.install_passthrough(receiver, lambda *_: None)


def test_passthrough_requires_the_private_seam() -> None:
    with pytest.raises(passthrough.PassthroughUnsupported, match="decoder queue"):
        passthrough.install_passthrough(object(), lambda *_: None)
