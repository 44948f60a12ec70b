"""The real detector on real face stills: one face measured, two faces or none flagged, mirrored photos swap sides."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from telehealth.analysis.frame import Scale
from telehealth.analysis.landmarks import Detector
from telehealth.analysis.still import summary
from tests.analysis.faces import Bump, astronaut_still, png, warp


@pytest.fixture(scope="module")
def detector() -> Iterator[Detector]:
    d = Detector()
    yield d
    d.close()


def test_a_still_with_two_faces_is_flagged_not_measured(detector: Detector) -> None:
    face = astronaut_still((640, 720))
    found = detector.detect(np.ascontiguousarray(np.concatenate([face, face[:, ::-1]], axis=1)))
    assert found.status == "several_faces" and found.landmarks is None


def test_an_image_that_cannot_be_decoded_is_an_error_reading(detector: Detector) -> None:
    found = detector.detect_bytes(b"\x89PNG\r\n\x1a\n not really")
    assert found.status == "error" and found.error is not None and "decode" in found.error


def test_a_mirrored_photo_reports_the_raised_corner_on_the_other_side(detector: Detector) -> None:
    rest = astronaut_still()
    # Raise the image-right mouth corner (the subject's left) by about 5 mm (0.36 mm per px).
    smile = warp(rest, [Bump((720, 430), (0, -14), (30, 30))])
    found = detector.detect_bytes(png(smile))
    found_mirrored = detector.detect(np.ascontiguousarray(smile[:, ::-1]))
    assert found.landmarks is not None and found_mirrored.landmarks is not None
    straight, mirrored = summary(found.landmarks), summary(found_mirrored.landmarks)
    lift = straight["metrics"]["commissure_height"]
    assert lift["left"] - lift["right"] > 2.0
    flipped = mirrored["metrics"]["commissure_height"]
    assert flipped["right"] - flipped["left"] > 2.0
    assert (
        straight["midline"]["commissure_height_difference"]
        < -2.0
        < 2.0
        < mirrored["midline"]["commissure_height_difference"]
    )


def test_the_astronaut_reads_a_plausible_adult_scale(detector: Detector) -> None:
    points = detector.detect(astronaut_still()).landmarks
    assert points is not None
    scale = Scale.from_iris(points)
    # 11.77 mm of iris gives an inter-pupil distance within the adult range (about 54-74 mm).
    assert 54 < scale.ipd_px * scale.mm_per_px < 74
