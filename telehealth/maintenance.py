"""Operator commands: `telehealth backup DIR`, `restore DIR`, `verify`, `erase` (parsers and output)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from telehealth.handlers.accounts import AccountsHandler
from telehealth.handlers.erasure import confirm_erasure, request_erasure
from telehealth.handlers.passwords import AdmissionGate, PasswordChecker
from telehealth.handlers.throttle import Throttle
from telehealth.records import audit
from telehealth.records.backup import BackupError, backup, restore, verify
from telehealth.records.db import make_engine, make_sessionmaker
from telehealth.records.errors import DomainError
from telehealth.records.mediastore import FileMediaStore
from telehealth.settings import Settings

COMMANDS = frozenset({"backup", "restore", "verify", "erase"})
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
    e = sub.add_parser("erase", help="erase a patient's records and media (two admins, two steps, audited)")
    steps = e.add_subparsers(dest="erase_step", required=True)
    req = steps.add_parser("request", help="step one: ask to erase a patient (nothing is deleted)")
    req.add_argument("--mrn", required=True)
    req.add_argument("--reason", required=True, help="the legal basis; kept in the audit log")
    req.add_argument("--admin", required=True, help="your admin username (password from TELEHEALTH_ADMIN_PASSWORD)")
    con = steps.add_parser("confirm", help="step two: a second admin confirms and the erasure happens")
    con.add_argument("request_id", type=int)
    con.add_argument("--admin", required=True, help="your admin username (password from TELEHEALTH_ADMIN_PASSWORD)")


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


async def _admin(settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], username: str) -> audit.Actor:
    """Sign the operator in as an admin (failures count towards the account lock, like the web login)."""
    password = os.environ.get("TELEHEALTH_ADMIN_PASSWORD", "")
    if not password:
        password = await asyncio.to_thread(getpass.getpass, "Password: ")
    # The web's own sign-in rule (throttle, lock, audit), so the command line is no way around it.
    passwords = PasswordChecker(1)
    try:
        accounts = AccountsHandler(
            lambda: sessionmaker,
            max_failures=settings.login_max_failures,
            throttle=Throttle(limit=settings.login_max_failures),
            passwords=passwords,
            gate=AdmissionGate(1),
            ended=_NoSockets(),
        )
        signed_in = await accounts.login(username, password, client_addr="cli", replaces=None)
    finally:
        passwords.close()
    user = signed_in.user
    return audit.Actor(str(user.id), user.role.value, "cli")


class _NoSockets:
    """The command line holds no sockets whose sessions could end."""

    async def ended(self, session_ids: Sequence[uuid.UUID]) -> None:
        """Nothing to close."""


async def _erase(settings: Settings, args: argparse.Namespace) -> int:
    engine = make_engine(settings.database_url)
    try:
        sessionmaker = make_sessionmaker(engine)
        admin = await _admin(settings, sessionmaker, args.admin)
        if args.erase_step == "request":
            req = await request_erasure(sessionmaker, admin, args.mrn, args.reason)
            print(f"erasure request {req.request_id} recorded; it would remove: {req.counts}")
            print(f"a second admin confirms with: telehealth erase confirm {req.request_id} --admin USERNAME")
        else:
            done = await confirm_erasure(sessionmaker, FileMediaStore(settings.media_dir), admin, args.request_id)
            print(f"erased: {done.counts}; {done.files_removed} media files removed")
    finally:
        await engine.dispose()
    return 0


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run one operator command; its exit code."""
    try:
        if args.command == "backup":
            return asyncio.run(_backup(settings, args.dir))
        if args.command == "restore":
            return asyncio.run(_restore(settings, args.dir, args.snapshot))
        if args.command == "erase":
            return asyncio.run(_erase(settings, args))
        return asyncio.run(_verify(settings, args.workers))
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except DomainError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
