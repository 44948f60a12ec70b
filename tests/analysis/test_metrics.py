"""Measurements on hand-made landmark sets: known geometry gives known millimetres, whatever the roll or side."""

from __future__ import annotations

import math

import numpy as np
import pytest

from telehealth.analysis.frame import FaceFrame, Scale, iris_diameter_px
from telehealth.analysis.metrics import measure, pose_deg
from telehealth.analysis.visit import analyse_visit, asymmetry_pct
from tests.analysis.synthetic import Face, mirrored


def test_a_frontal_face_reads_its_known_millimetres() -> None:
    face = Face(brow=(18.0, 22.0), mrd1=(3.0, 4.5), mrd2=(5.5, 6.0), corner_rise=(8.0, 12.0))
    points = face.image(px_per_mm=5.0)
    scale = Scale.from_iris(points)
    assert scale.mm_per_px == pytest.approx(0.2)
    assert scale.ipd_px == pytest.approx(310.0)
    m = measure(points, scale.mm_per_px).sides
    assert m["brow_height"] == pytest.approx({"right": 18.0, "left": 22.0})
    assert m["mrd1"] == pytest.approx({"right": 3.0, "left": 4.5})
    assert m["mrd2"] == pytest.approx({"right": 5.5, "left": 6.0})
    assert m["palpebral_fissure_height"] == pytest.approx({"right": 8.5, "left": 10.5})
    assert m["commissure_excursion"] == pytest.approx({"right": math.hypot(25, 8), "left": math.hypot(25, 12)})
    assert m["smile_angle"]["right"] == pytest.approx(90 + math.degrees(math.asin(8 / math.hypot(25, 8))))
    assert m["commissure_height"] == pytest.approx({"right": 8.0, "left": 12.0})
    assert m["lower_lip_height"] == pytest.approx({"right": 4.0, "left": 6.0})
    assert m["dental_show"] == pytest.approx({"right": 72.0, "left": 72.0})
    assert measure(points, scale.mm_per_px).commissure_height_difference == pytest.approx(-4.0)


def test_head_roll_does_not_change_any_measurement() -> None:
    face = Face(brow=(18.0, 22.0), corner_rise=(6.0, 11.0))
    level = measure(face.image(), Scale.from_iris(face.image()).mm_per_px).sides
    for roll in (-25.0, 12.0):
        tilted = face.image(roll_deg=roll, origin=(500.0, 350.0))
        assert FaceFrame.of(tilted).roll_deg == pytest.approx(roll)
        assert pose_deg(tilted)["roll"] == pytest.approx(roll)
        m = measure(tilted, Scale.from_iris(tilted).mm_per_px).sides
        for name, values in level.items():
            assert m[name] == pytest.approx(values), name


def test_the_subjects_right_is_the_image_left() -> None:
    points = Face(brow=(15.0, 25.0)).image()
    assert points[468, 0] < points[473, 0]  # subject's right pupil on the image left
    m = measure(points, 0.2).sides
    assert m["brow_height"]["right"] == pytest.approx(15.0)


def test_a_mirrored_photo_swaps_the_sides() -> None:
    face = Face(brow=(15.0, 25.0), mrd1=(2.0, 4.0), corner_rise=(3.0, 12.0), corner_u=(22.0, 27.0))
    points = face.image(roll_deg=5.0)
    straight = measure(points, 0.2).sides
    flipped = measure(mirrored(points), 0.2).sides
    for name, values in straight.items():
        assert flipped[name]["right"] == pytest.approx(values["left"]), name
        assert flipped[name]["left"] == pytest.approx(values["right"]), name
    assert straight["brow_height"]["right"] != pytest.approx(straight["brow_height"]["left"])


def test_the_iris_diameter_averages_horizontal_and_vertical_rings_of_both_eyes() -> None:
    points = Face(iris_vertical_ratio=0.8).image(px_per_mm=5.0)
    assert iris_diameter_px(points) == pytest.approx(11.77 * 5.0 * 0.9)


def test_a_closed_eye_still_uses_the_rest_scale_corrected_for_distance() -> None:
    rest = Face().image(px_per_mm=5.0)
    # Eyes closed (iris ring collapsed) and the patient moved closer: 6 px per mm.
    closed = Face(mrd1=(0.5, 0.5), mrd2=(1.0, 1.0), iris_vertical_ratio=0.0).image(px_per_mm=6.0)
    scale = Scale.from_iris(rest).carried_to(closed)
    assert scale.mm_per_px == pytest.approx(1 / 6)
    visit = analyse_visit({"rest": rest, "eye_close_gentle": closed})
    fissure = visit.steps["eye_close_gentle"].metrics["palpebral_fissure_height"]
    assert fissure == pytest.approx({"right": 1.5, "left": 1.5})
    assert visit.steps["eye_close_gentle"].movement is not None
    assert visit.steps["eye_close_gentle"].movement["palpebral_fissure_height"]["left"] == pytest.approx(-7.5)


def test_movement_and_its_asymmetry_find_the_weaker_side() -> None:
    rest = Face(corner_rise=(5.0, 5.0), brow=(20.0, 20.0))
    # Left moves twice as much as right: a right-sided palsy at half the healthy movement.
    smile = Face(corner_rise=(8.0, 11.0), corner_u=(27.0, 29.0))
    brow = Face(brow=(22.0, 24.0))
    visit = analyse_visit({"rest": rest.image(), "smile_open": smile.image(), "brow_raise": brow.image()})
    mv = visit.steps["brow_raise"].movement
    assert mv is not None and mv["brow_height"] == pytest.approx({"right": 2.0, "left": 4.0})
    mv_asym = visit.steps["brow_raise"].movement_asymmetry_pct
    assert mv_asym is not None and mv_asym["brow_height"] == pytest.approx(50.0)
    assert visit.affected == "right" and visit.affected_source == "inferred"
    assert visit.eface["brow_elevation"].value == pytest.approx(50.0)
    assert visit.steps["rest"].movement is None


def test_the_recorded_affected_side_decides_the_healthy_side() -> None:
    values = {"right": 2.0, "left": 4.0}
    assert asymmetry_pct(values, None) == pytest.approx(50.0)  # healthy = larger |value| = left
    assert asymmetry_pct(values, "left") == pytest.approx(100.0)  # healthy = right by the record
    assert asymmetry_pct({"right": 0.0, "left": 3.0}, "left") is None


def test_eface_items_come_from_rest_closure_smile_and_synkinesis() -> None:
    rest = Face(brow=(18.0, 20.0), mrd1=(4.0, 4.0), mrd2=(5.0, 5.0), corner_rise=(5.0, 5.0))
    closed = Face(brow=(18.0, 20.0), mrd1=(-2.0, -4.0), mrd2=(4.0, 4.0), iris_vertical_ratio=0.0)
    smile = Face(brow=(18.0, 20.0), mrd1=(3.0, 4.0), mrd2=(3.0, 5.0), corner_rise=(7.0, 9.0), corner_u=(25.0, 25.0))
    stills = {"rest": rest.image(), "eye_close_gentle": closed.image(), "smile_open": smile.image()}
    visit = analyse_visit(stills, affected="right")
    assert visit.affected_source == "recorded"
    e = {name: item.value for name, item in visit.eface.items()}
    assert e["brow_rest"] == pytest.approx(90.0)
    assert e["eye_closure_gentle"] == pytest.approx(round((9 - 2) / 9 * 100, 1))
    smile_mv = visit.steps["smile_open"].movement
    assert smile_mv is not None
    exc = smile_mv["commissure_excursion"]
    assert e["smile"] == pytest.approx(round(exc["right"] / exc["left"] * 100, 1))
    assert e["ocular_synkinesis"] == pytest.approx(66.7)  # 6 mm of 9 mm


@pytest.mark.parametrize("shape", [(477, 2), (478, 4), (478,)])
def test_a_landmark_set_of_the_wrong_shape_is_refused(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError):
        measure(np.zeros(shape), 0.2)
