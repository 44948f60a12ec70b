"""The protocol loader accepts the shipped default and rejects malformed clinic files."""

import json
from pathlib import Path
from typing import Any

import pytest

from telehealth.capture.protocol import (
    InvalidProtocolError,
    StillRule,
    default_protocol,
    load_protocol,
)


def _valid() -> dict[str, Any]:
    return {
        "id": "clinic-a",
        "version": 2,
        "steps": [
            {
                "id": "rest",
                "instruction": "Relax",
                "still": True,
                "clip": True,
                "clip_seconds": 5,
                "still_rule": "sharpest",
            },
            {"id": "smile", "instruction": "Smile", "still": True, "clip": False, "clip_seconds": 4},
        ],
    }


def _write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "p.json"
    path.write_text(json.dumps(data))
    return path


def test_default_protocol_has_the_ten_brief_steps_in_order() -> None:
    protocol = default_protocol()
    assert [s.id for s in protocol.steps] == [
        "rest",
        "brow_raise",
        "eye_close_gentle",
        "eye_close_tight",
        "smile_closed",
        "smile_open",
        "snarl",
        "pucker",
        "lower_teeth",
        "spontaneous",
    ]
    spontaneous = protocol.step("spontaneous")
    assert spontaneous.optional and spontaneous.spontaneous and not spontaneous.still
    assert 20 <= spontaneous.clip_seconds <= 60
    assert protocol.step("rest").still_rule is StillRule.SHARPEST
    assert protocol.step("smile_open").still_rule is StillRule.PEAK_EXPRESSION


def test_clinic_file_loads(tmp_path: Path) -> None:
    protocol = load_protocol(_write(tmp_path, _valid()))
    assert protocol.id == "clinic-a" and protocol.version == 2
    assert protocol.step("smile").clip is False


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["steps"].append(dict(d["steps"][0])), "duplicate step ids"),
        (lambda d: d["steps"][0].update(clip_seconds=0), "clip_seconds"),
        (lambda d: d["steps"][0].update(clip_seconds=600), "clip_seconds"),
        (lambda d: d["steps"][0].update(clip_seconds="5"), "wrong type"),
        (lambda d: d["steps"][0].update(still=1), "wrong type"),
        (lambda d: d["steps"][0].update(still=False, clip=False), "neither"),
        (lambda d: d["steps"][0].update(id="Rest Face"), "must match"),
        (lambda d: d["steps"][0].update(instruction="  "), "empty instruction"),
        (lambda d: d["steps"][0].update(still_rule="best"), "StillRule"),
        (lambda d: d["steps"][0].update(colour="red"), "unknown keys"),
        (lambda d: d["steps"][0].pop("instruction"), "missing keys"),
        (lambda d: d.update(steps=[]), "at least one step"),
        (lambda d: d.update(version=0), "version"),
        (lambda d: d.update(version=True), "boolean"),
    ],
)
def test_bad_files_are_rejected(tmp_path: Path, mutate: Any, message: str) -> None:
    data = _valid()
    mutate(data)
    with pytest.raises(InvalidProtocolError, match=message):
        load_protocol(_write(tmp_path, data))


def test_invalid_json_is_a_protocol_error(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text("{not json")
    with pytest.raises(InvalidProtocolError, match="not valid JSON"):
        load_protocol(path)
