"""`telehealth measure`: measure a series of photographs (clinic archives, validation) from the command line.

    telehealth measure --json [--affected left|right] REST_IMAGE [STEP_ID=IMAGE ...]

The rest still is step ``rest``; lengths in mm, angles in degrees, areas in mm2. Runs in this
process (no server, no database).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from telehealth.analysis.frame import Points
from telehealth.analysis.landmarks import Detector
from telehealth.analysis.metrics import METRIC_UNITS, Side
from telehealth.analysis.visit import REST, StepResult, analyse_visit


def add_parser(sub: Any) -> None:
    """Add the ``measure`` subcommand to a subparsers object."""
    p = sub.add_parser("measure", help="measure face photographs: a rest still and expression stills")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--affected", choices=["left", "right"], help="the patient's affected side, if known")
    p.add_argument("rest", metavar="REST_IMAGE")
    p.add_argument("steps", nargs="*", metavar="STEP_ID=IMAGE")


def _parse_steps(rest: str, steps: list[str]) -> dict[str, Path]:
    files = {REST: Path(rest)}
    for item in steps:
        step, sep, path = item.partition("=")
        if not sep or not step or not path:
            raise SystemExit(f"expected STEP_ID=IMAGE, got {item!r}")
        if step in files:
            raise SystemExit(f"step {step!r} given twice")
        files[step] = Path(path)
    return files


def _step_json(r: StepResult) -> dict[str, Any]:
    out: dict[str, Any] = {
        "status": "ok",
        "pose_deg": dict(r.pose_deg),
        "metrics": {k: dict(v) for k, v in r.metrics.items()},
        "asymmetry_pct": r.asymmetry_pct,
    }
    if r.movement is not None:
        out["movement"] = {k: dict(v) for k, v in r.movement.items()}
        out["movement_asymmetry_pct"] = r.movement_asymmetry_pct
    return out


def measure_files(files: dict[str, Path], affected: Side | None, detector: Detector) -> dict[str, Any]:
    """Detect and measure each file; the result in the command's JSON shape."""
    statuses: dict[str, str] = {}
    points: dict[str, Points] = {}
    for step, path in files.items():
        try:
            data = path.read_bytes()
        except OSError as exc:
            statuses[step] = "error"
            print(f"{step}: cannot read {path}: {exc.strerror}", file=sys.stderr)
            continue
        found = detector.detect_bytes(data)
        statuses[step] = found.status
        if found.landmarks is not None:
            points[step] = found.landmarks
        elif found.error:
            print(f"{step}: {found.error}", file=sys.stderr)
    visit = analyse_visit(points, affected)
    scale = visit.scale
    steps: dict[str, Any] = {}
    for step in files:
        result = visit.steps.get(step)
        steps[step] = _step_json(result) if result is not None else {"status": statuses[step]}
    return {
        "scale": {"mm_per_px": scale.mm_per_px, "iris_diameter_px": scale.iris_diameter_px} if scale else None,
        "steps": steps,
    }


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}"


def print_table(result: dict[str, Any], out: TextIO) -> None:
    """The readable form: one block per step, one row per metric."""
    scale = result["scale"]
    if scale:
        print(f"scale: {scale['mm_per_px']:.4f} mm/px (iris {scale['iris_diameter_px']:.1f} px)", file=out)
    else:
        print("scale: none (no face in the rest still): each still uses its own iris", file=out)
    for step, r in result["steps"].items():
        print(f"\n{step}: {r['status']}", file=out)
        if r["status"] != "ok":
            continue
        pose = r["pose_deg"]
        print(f"  pose: yaw {pose['yaw']:.1f}, pitch {pose['pitch']:.1f}, roll {pose['roll']:.1f} deg", file=out)
        header = f"  {'metric':<26}{'unit':<6}{'right':>8}{'left':>8}{'asym%':>8}"
        if "movement" in r:
            header += f"{'mv right':>10}{'mv left':>9}{'mv asym%':>10}"
        print(header, file=out)
        for name, unit in METRIC_UNITS.items():
            v = r["metrics"][name]
            line = f"  {name:<26}{unit:<6}{v['right']:>8.1f}{v['left']:>8.1f}{_fmt(r['asymmetry_pct'][name]):>8}"
            if "movement" in r:
                mv = r["movement"][name]
                line += f"{mv['right']:>10.1f}{mv['left']:>9.1f}{_fmt(r['movement_asymmetry_pct'][name]):>10}"
            print(line, file=out)


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run the subcommand; 1 when the rest still could not be measured (no scale), else 0."""
    out = out or sys.stdout  # looked up now, not at import: callers may have replaced it
    files = _parse_steps(args.rest, args.steps)
    detector = Detector()
    try:
        result = measure_files(files, args.affected, detector)
    finally:
        detector.close()
    if args.json:
        json.dump(result, out, indent=2)
        out.write("\n")
    else:
        print_table(result, out)
    return 0 if result["scale"] is not None else 1


def main(argv: list[str] | None = None) -> int:
    """``python -m telehealth.analysis measure ...`` (the same as ``telehealth measure`` once wired)."""
    parser = argparse.ArgumentParser(prog="python -m telehealth.analysis")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(argv))
