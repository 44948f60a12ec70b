"""`measure` on photographs from a folder: the JSON interface of the issue, and a readable table."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from telehealth.analysis.command import main, measure_files, print_table
from telehealth.analysis.landmarks import Detector
from tests.analysis.faces import Bump, astronaut_still, jpeg, png, warp


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("archive")
    rest = astronaut_still()
    smile = warp(rest, [Bump((540, 430), (-6, -9), (40, 30)), Bump((720, 430), (12, -18), (40, 30))])
    files = {
        "rest": folder / "rest.png",
        "smile_open": folder / "smile.jpg",
        "brow_raise": folder / "wall.png",
    }
    files["rest"].write_bytes(png(rest))
    files["smile_open"].write_bytes(jpeg(smile, 92))
    files["brow_raise"].write_bytes(png(np.full((720, 1280, 3), 200, dtype=np.uint8)))
    return files


def test_the_json_output_has_scale_steps_movement_and_flags(
    photos: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["measure", "--json", "--affected", "right", str(photos["rest"])]
    argv += [f"smile_open={photos['smile_open']}", f"brow_raise={photos['brow_raise']}"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"scale", "steps"}
    assert set(out["scale"]) == {"mm_per_px", "iris_diameter_px"} and 0.2 < out["scale"]["mm_per_px"] < 0.6
    rest, smile = out["steps"]["rest"], out["steps"]["smile_open"]
    assert rest["status"] == "ok" and "movement" not in rest and "movement_asymmetry_pct" not in rest
    assert set(rest["pose_deg"]) == {"yaw", "pitch", "roll"}
    assert set(smile) == {"status", "pose_deg", "metrics", "asymmetry_pct", "movement", "movement_asymmetry_pct"}
    mv = smile["movement"]["commissure_excursion"]
    assert 0 < mv["right"] < mv["left"]
    assert out["steps"]["brow_raise"] == {"status": "no_face"}


def test_without_a_face_at_rest_there_is_no_scale_and_the_command_fails(
    photos: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["measure", "--json", str(photos["brow_raise"])]) == 1
    assert json.loads(capsys.readouterr().out)["scale"] is None


def test_the_table_lists_every_metric_per_side(photos: dict[str, Path]) -> None:
    detector = Detector(runs=1)
    try:
        result = measure_files({"rest": photos["rest"], "smile_open": photos["smile_open"]}, None, detector)
    finally:
        detector.close()
    out = io.StringIO()
    print_table(result, out)
    text = out.getvalue()
    assert "smile_open: ok" in text and "mv asym%" in text
    assert text.count("commissure_excursion") == 2
