"""A visit's measurements: rest scale carried to every still, movement from rest, asymmetry, eFACE-style items."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from telehealth.analysis.frame import Points, Scale
from telehealth.analysis.metrics import Pose, Side, SideValues, measure, pose_deg

REST: Final = "rest"


def other(side: Side) -> Side:
    """The opposite side."""
    return "left" if side == "right" else "right"


def healthy_side(values: SideValues, affected: Side | None) -> Side:
    """The side to compare against: opposite the recorded affected side, else the one of larger magnitude."""
    if affected is not None:
        return other(affected)
    return "right" if abs(values["right"]) >= abs(values["left"]) else "left"


def asymmetry_pct(values: SideValues, affected: Side | None) -> float | None:
    """|right - left| x 100 / |healthy side|; None when the healthy side's value is zero."""
    healthy = abs(values[healthy_side(values, affected)])
    if healthy < 1e-9:
        return None
    return abs(values["right"] - values["left"]) * 100.0 / healthy


def movement(expression: Mapping[str, SideValues], rest: Mapping[str, SideValues]) -> dict[str, SideValues]:
    """Expression minus rest, per metric and side."""
    return {
        name: SideValues(right=vals["right"] - rest[name]["right"], left=vals["left"] - rest[name]["left"])
        for name, vals in expression.items()
        if name in rest
    }


@dataclass(frozen=True, slots=True)
class StepResult:
    """One protocol step's still measured at the visit's scale."""

    scale: Scale
    pose_deg: Pose
    metrics: dict[str, SideValues]
    commissure_height_difference: float
    asymmetry_pct: dict[str, float | None]
    movement: dict[str, SideValues] | None = None
    movement_asymmetry_pct: dict[str, float | None] | None = None


@dataclass(frozen=True, slots=True)
class EfaceItem:
    """An eFACE-style value computed from the stills (decision support, editable in the form)."""

    value: float
    basis: str


@dataclass(frozen=True, slots=True)
class VisitAnalysis:
    """Everything computed for a visit from its stills' landmarks."""

    scale: Scale | None
    steps: dict[str, StepResult]
    affected: Side | None
    affected_source: Literal["recorded", "inferred"] | None
    eface: dict[str, EfaceItem] = field(default_factory=dict)


def _ratio_pct(aff: float, healthy: float, cap: float) -> float | None:
    """aff / healthy x 100 clipped to [0, cap]; None when the healthy value is zero."""
    if abs(healthy) < 1e-9:
        return None
    return max(0.0, min(cap, aff / healthy * 100.0))


def _infer_affected(steps: Mapping[str, StepResult]) -> Side | None:
    """The weaker side by smile movement, else by brow movement (for palsies of unknown side)."""
    for step, metric in (("smile_open", "commissure_excursion"), ("brow_raise", "brow_height")):
        mv = steps[step].movement if step in steps else None
        if mv is not None and metric in mv:
            healthy = healthy_side(mv[metric], None)
            return other(healthy)
    return None


def _eface(steps: Mapping[str, StepResult], aff: Side) -> dict[str, EfaceItem]:
    """auto-eFACE-style items that the stills allow (0-100, brow at rest 0-200; 100 = symmetric)."""
    healthy = other(aff)
    items: dict[str, EfaceItem] = {}

    def put(name: str, value: float | None, basis: str) -> None:
        if value is not None:
            items[name] = EfaceItem(round(value, 1), basis)

    if REST in steps:
        brow = steps[REST].metrics["brow_height"]
        put("brow_rest", _ratio_pct(brow[aff], brow[healthy], 200.0), "rest brow height, affected / healthy")
    for step, name, metric in (
        ("brow_raise", "brow_elevation", "brow_height"),
        ("smile_open", "smile", "commissure_excursion"),
        ("lower_teeth", "lower_lip", "lower_lip_height"),
    ):
        mv = steps[step].movement if step in steps else None
        if mv is not None:
            put(name, _ratio_pct(mv[metric][aff], mv[metric][healthy], 100.0), f"{step} movement, affected / healthy")
    if REST in steps:
        rest_fissure = steps[REST].metrics["palpebral_fissure_height"][aff]
        for step, name in (("eye_close_gentle", "eye_closure_gentle"), ("eye_close_tight", "eye_closure_full")):
            if step in steps and rest_fissure > 1e-9:
                closed = steps[step].metrics["palpebral_fissure_height"][aff]
                put(name, max(0.0, min(100.0, (rest_fissure - closed) / rest_fissure * 100.0)), f"{step} closure")
    ratios = [
        _ratio_pct(f[aff], f[healthy], 100.0)
        for step in ("smile_open", "pucker")
        if step in steps
        for f in (steps[step].metrics["palpebral_fissure_height"],)
    ]
    known = [r for r in ratios if r is not None]
    if known:
        put("ocular_synkinesis", min(known), "fissure affected / healthy, least of smile_open and pucker")
    return items


def analyse_visit(stills: Mapping[str, Points], affected: Side | None = None) -> VisitAnalysis:
    """Measure a visit's stills (step id -> landmarks) at the rest still's scale.

    Without a rest still each still falls back to its own iris scale and no movement is computed.
    ``affected`` is the recorded affected side (None when unknown or bilateral).
    """
    rest_scale = Scale.from_iris(stills[REST]) if REST in stills else None
    steps: dict[str, StepResult] = {}
    rest_metrics: dict[str, SideValues] | None = None
    order = sorted(stills, key=lambda s: s != REST)  # rest first: the others need its values
    for step in order:
        points = stills[step]
        scale = rest_scale.carried_to(points) if rest_scale is not None else Scale.from_iris(points)
        m = measure(points, scale.mm_per_px)
        asym = {name: asymmetry_pct(vals, affected) for name, vals in m.sides.items()}
        mv = mv_asym = None
        if step == REST:
            rest_metrics = m.sides
        elif rest_metrics is not None:
            mv = movement(m.sides, rest_metrics)
            mv_asym = {name: asymmetry_pct(vals, affected) for name, vals in mv.items()}
        steps[step] = StepResult(scale, pose_deg(points), m.sides, m.commissure_height_difference, asym, mv, mv_asym)
    if affected is not None:
        return VisitAnalysis(rest_scale, steps, affected, "recorded", _eface(steps, affected))
    inferred = _infer_affected(steps)
    if inferred is None:
        return VisitAnalysis(rest_scale, steps, None, None)
    return VisitAnalysis(rest_scale, steps, inferred, "inferred", _eface(steps, inferred))
