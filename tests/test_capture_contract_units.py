"""The capture contract's pieces on their own: protocol catalogue, quality records, step order."""

from __future__ import annotations

from dataclasses import replace

import pytest

from telehealth.capture import InvalidProtocolError, default_protocol
from telehealth.capture.catalogue import DEFAULT_PROTOCOL_ID, ProtocolCatalogue
from telehealth.records.captures import step_sequence
from telehealth.records.quality import CaptureQuality, read_quality


def test_the_shipped_catalogue_serves_the_default_protocol_by_id_and_version() -> None:
    catalogue = ProtocolCatalogue.shipped()
    default = catalogue.default
    assert default.id == DEFAULT_PROTOCOL_ID and catalogue.get(default.id, "1") is default
    assert catalogue.get(default.id, 2) is None and catalogue.get("default", 1) is None
    assert [s.label for s in default.steps][:3] == ["Rest", "Brow raise", "Gentle eye closure"]


def test_a_newer_version_is_the_default_while_the_older_stays_readable() -> None:
    v1 = default_protocol()
    v2 = replace(v1, version=2, steps=v1.steps[:3])
    catalogue = ProtocolCatalogue([v1, v2])
    assert catalogue.default is v2 and catalogue.get(v1.id, "1") is v1
    with pytest.raises(InvalidProtocolError, match="defined twice"):
        ProtocolCatalogue([v1, v1])
    with pytest.raises(InvalidProtocolError, match="not in the catalogue"):
        ProtocolCatalogue([replace(v1, id="other")])


def test_a_clip_whose_resolution_held_has_no_flag_in_either_record_version() -> None:
    old_clip = {"version": 1, "source": "stream", "preroll_seconds": 1.5, "resolution_changed": False}
    quality = read_quality(old_clip)
    assert quality is not None and quality.flags == [] and quality.version == 2
    changed = read_quality({**old_clip, "resolution_changed": True})
    assert changed is not None and changed.flags == ["resolution_changed"]
    # A passed check is never a flag, whatever else is stored as false.
    still = read_quality({"version": 1, "source": "device", "ok": False, "flags": ["too_dark"]})
    assert still is not None and still.flags == ["too_dark"]


def test_a_quality_record_round_trips_and_an_unreadable_one_is_ignored() -> None:
    quality = CaptureQuality(source="device", width=4032, height=3024, flags=["uneven_light"])
    assert read_quality(quality.to_json()) == quality
    assert read_quality({"flags": ["yaw"]}) is None  # no source: not a record capture writes
    assert read_quality(None) is None


def test_steps_follow_the_protocol_and_steps_outside_it_follow_alphabetically() -> None:
    protocol = default_protocol()
    order = step_sequence(protocol.steps, ["zygoma", "smile_open", "blink"])
    assert [s.id for s in order] == [s.id for s in protocol.steps] + ["blink", "zygoma"]
    assert order[-1].label == "Zygoma"
