"""Operator commands: `telehealth backup DIR`, `restore DIR`, `verify` (parsers and output)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from telehealth.records.backup import BackupError, backup, restore, verify
from telehealth.settings import Settings

COMMANDS = frozenset({"backup", "restore", "verify"})
_SHOWN = 50  # problems printed per kind; the count is always printed


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the backup, restore and verify subcommands."""
    b = sub.add_parser("backup", help="consistent snapshot of database and media into DIR (incremental media)")
    b.add_argument("dir", type=Path)
    r = sub.add_parser("restore", help="restore the newest (or a named) snapshot from DIR into an empty deployment")
    r.add_argument("dir", type=Path)
    r.add_argument("--snapshot", help="a name under DIR/snapshots (default: DIR/LATEST)")
    v = sub.add_parser("verify", help="re-hash every media file against its row; non-zero exit on any problem")
    v.add_argument("--workers", type=int, default=2, help="hashing threads (default 2)")


def _print_list(title: str, items: list[str]) -> None:
    for item in items[:_SHOWN]:
        print(f"{title}: {item}")
    if len(items) > _SHOWN:
        print(f"{title}: ... and {len(items) - _SHOWN} more")


async def _backup(settings: Settings, target: Path) -> int:
    result = await backup(settings.database_url, settings.media_dir, target)
    print(
        f"snapshot {result.snapshot.name}: {result.media_files} media files, {result.copied} new "
        f"({result.copied_bytes / 1e6:.1f} MB copied) in {result.seconds:.1f} s"
    )
    _print_list("problem", result.problems)
    return 1 if result.problems else 0


async def _restore(settings: Settings, source: Path, snapshot: str | None) -> int:
    result = await restore(settings.database_url, settings.media_dir, source, snapshot)
    print(f"restored snapshot {result.snapshot.name}: {result.media_files} media files in {result.seconds:.1f} s")
    return 0


async def _verify(settings: Settings, workers: int) -> int:
    report = await verify(settings.database_url, settings.media_dir, workers=max(1, workers))
    _print_list("missing", report.missing)
    _print_list("mismatch", report.mismatched)
    _print_list("orphan", report.orphans)
    print(
        f"checked {report.checked} media files in {report.seconds:.1f} s ({report.files_per_second:.0f} files/s): "
        f"{len(report.missing)} missing, {len(report.mismatched)} mismatched, {len(report.orphans)} orphans"
    )
    return 0 if report.ok else 1


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run one operator command; its exit code."""
    try:
        if args.command == "backup":
            return asyncio.run(_backup(settings, args.dir))
        if args.command == "restore":
            return asyncio.run(_restore(settings, args.dir, args.snapshot))
        return asyncio.run(_verify(settings, args.workers))
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
