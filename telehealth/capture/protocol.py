"""Capture protocols as data: which expressions to capture, in which order, and how."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = [
    "CaptureProtocol",
    "InvalidProtocolError",
    "ProtocolStep",
    "StillRule",
    "default_protocol",
    "load_protocol",
    "parse_protocol",
    "shipped_protocols",
]

MIN_CLIP_SECONDS = 1.0
# The spontaneous step runs 20-60 s; anything longer would not fit the held ring (see ring.py).
MAX_CLIP_SECONDS = 90.0
_ID_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_STEP_KEYS = frozenset(
    {"id", "label", "instruction", "still", "clip", "clip_seconds", "still_rule", "optional", "spontaneous"}
)
_PROTOCOL_KEYS = frozenset({"id", "version", "title", "steps"})


class InvalidProtocolError(ValueError):
    """A protocol file is malformed or inconsistent."""


class StillRule(Enum):
    """How the still of a step is picked from its window (see still.py)."""

    PEAK_EXPRESSION = "peak"  # largest change from the window's first frame, among sharp frames
    SHARPEST = "sharpest"  # sharpest, steadiest frame: for the resting face


@dataclass(frozen=True, slots=True)
class ProtocolStep:
    """One expression the patient is asked to make; ``label`` is its name on review pages and exports."""

    id: str
    instruction: str
    still: bool
    clip: bool
    clip_seconds: float
    still_rule: StillRule = StillRule.PEAK_EXPRESSION
    optional: bool = False
    spontaneous: bool = False
    label: str = ""

    def __post_init__(self) -> None:
        if not self.label:  # a readable default: "brow_raise" -> "Brow raise"
            object.__setattr__(self, "label", self.id.replace("_", " ").capitalize())
        if not _ID_RE.match(self.id):
            raise InvalidProtocolError(f"step id {self.id!r} must match {_ID_RE.pattern}")
        if not self.instruction.strip():
            raise InvalidProtocolError(f"step {self.id!r} has an empty instruction")
        if not (self.still or self.clip):
            raise InvalidProtocolError(f"step {self.id!r} captures neither a still nor a clip")
        if not MIN_CLIP_SECONDS <= self.clip_seconds <= MAX_CLIP_SECONDS:
            raise InvalidProtocolError(
                f"step {self.id!r}: clip_seconds {self.clip_seconds} outside [{MIN_CLIP_SECONDS}, {MAX_CLIP_SECONDS}]"
            )


@dataclass(frozen=True, slots=True)
class CaptureProtocol:
    """An ordered set of steps, identified by id and version."""

    id: str
    version: int
    title: str
    steps: tuple[ProtocolStep, ...]

    def __post_init__(self) -> None:
        if not _ID_RE.match(self.id.replace("-", "_")):
            raise InvalidProtocolError(f"protocol id {self.id!r} is not a simple identifier")
        if self.version < 1:
            raise InvalidProtocolError(f"protocol version must be >= 1, got {self.version}")
        if not self.steps:
            raise InvalidProtocolError("a protocol needs at least one step")
        ids = [step.id for step in self.steps]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise InvalidProtocolError(f"duplicate step ids: {', '.join(duplicates)}")

    def step(self, step_id: str) -> ProtocolStep:
        """Return the step with this id, or raise KeyError."""
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)


def _typed(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = data[key]
    # bool is an int in Python: refuse it where a number is expected.
    if isinstance(value, bool) and kind is not bool:
        raise InvalidProtocolError(f"{where}: {key!r} must not be a boolean")
    if not isinstance(value, kind):
        raise InvalidProtocolError(f"{where}: {key!r} has the wrong type ({type(value).__name__})")
    return value


def _check_keys(data: Any, allowed: frozenset[str], required: set[str], where: str) -> None:
    if not isinstance(data, dict):
        raise InvalidProtocolError(f"{where}: expected an object")
    unknown = set(data) - allowed
    if unknown:
        raise InvalidProtocolError(f"{where}: unknown keys {sorted(unknown)}")
    missing = required - set(data)
    if missing:
        raise InvalidProtocolError(f"{where}: missing keys {sorted(missing)}")


def _flag(data: Mapping[str, Any], key: str, where: str) -> bool:
    return bool(_typed(data, key, bool, where)) if key in data else False


def _parse_step(data: Any, index: int) -> ProtocolStep:
    where = f"steps[{index}]"
    _check_keys(data, _STEP_KEYS, {"id", "instruction", "still", "clip", "clip_seconds"}, where)
    try:
        rule = StillRule(data.get("still_rule", StillRule.PEAK_EXPRESSION.value))
    except ValueError as exc:
        raise InvalidProtocolError(f"{where}: {exc}") from None
    return ProtocolStep(
        id=_typed(data, "id", str, where),
        instruction=_typed(data, "instruction", str, where),
        still=_typed(data, "still", bool, where),
        clip=_typed(data, "clip", bool, where),
        clip_seconds=float(_typed(data, "clip_seconds", (int, float), where)),
        still_rule=rule,
        optional=_flag(data, "optional", where),
        spontaneous=_flag(data, "spontaneous", where),
        label=_typed(data, "label", str, where) if "label" in data else "",
    )


def parse_protocol(data: Any) -> CaptureProtocol:
    """Build a validated protocol from decoded JSON."""
    _check_keys(data, _PROTOCOL_KEYS, {"id", "version", "steps"}, "protocol")
    steps = data["steps"]
    if not isinstance(steps, list):
        raise InvalidProtocolError("protocol: 'steps' must be a list")
    return CaptureProtocol(
        id=_typed(data, "id", str, "protocol"),
        version=_typed(data, "version", int, "protocol"),
        title=str(data.get("title", "")),
        steps=tuple(_parse_step(step, i) for i, step in enumerate(steps)),
    )


def load_protocol(path: str | Path) -> CaptureProtocol:
    """Load and validate a protocol JSON file (blocking: call it at startup or in an executor)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InvalidProtocolError(f"{path}: not valid JSON: {exc}") from None
    return parse_protocol(data)


def shipped_protocols() -> list[CaptureProtocol]:
    """Every protocol file shipped in ``capture/protocols/`` (blocking: read once at startup)."""
    folder = resources.files(__package__).joinpath("protocols")
    found = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            try:
                found.append(parse_protocol(json.loads(entry.read_text("utf-8"))))
            except (json.JSONDecodeError, InvalidProtocolError) as exc:
                raise InvalidProtocolError(f"protocols/{entry.name}: {exc}") from None
    return found


def default_protocol() -> CaptureProtocol:
    """Return the shipped default protocol (the clinical brief's ten steps)."""
    text = resources.files(__package__).joinpath("protocols/default.json").read_text("utf-8")
    return parse_protocol(json.loads(text))
