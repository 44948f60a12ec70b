"""Command line: serve, db upgrade, users add, demo, backup, restore, verify."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from aiohttp import web
from sqlalchemy.engine import make_url

from telehealth import maintenance
from telehealth.analysis import command as measure_command
from telehealth.app import create_app
from telehealth.demo import DemoInfo, ensure_demo
from telehealth.logs import configure_logging
from telehealth.records.accounts import create_user
from telehealth.records.db import make_engine, make_sessionmaker
from telehealth.records.errors import DomainError
from telehealth.records.migrate import upgrade_sync
from telehealth.records.models import Role
from telehealth.settings import Settings
from telehealth.signaling import tune_gc_for_latency
from telehealth.tls import ensure_self_signed, ssl_context


def _print_demo(info: DemoInfo, base: str) -> None:
    print("\n=== Telehealth demo clinic ===", flush=True)
    print(f"Open {base}/login", flush=True)
    for name, password in info.logins.items():
        print(f"  {name:10s} password: {password}", flush=True)
    if not info.logins:
        print("  (demo passwords were not kept in var/demo-logins.json)", flush=True)
    print(f"Patient join link (today's demo visit): {base}{info.join_path}", flush=True)
    print("Stop with Ctrl-C.\n", flush=True)


async def _demo_info(settings: Settings) -> DemoInfo:
    engine = make_engine(settings.database_url)
    try:
        return await ensure_demo(make_sessionmaker(engine), settings.var_dir, valid_hours=settings.join_link_hours)
    finally:
        await engine.dispose()


# Everything the server writes (database, media, keys, logs in var/) is for its own user only.
PRIVATE_UMASK = 0o077


def _private_files(settings: Settings) -> None:
    """var/ and the media store 0700, the SQLite files and the secret key 0600, also when they already exist."""
    for directory in (settings.var_dir, settings.media_dir):
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        directory.chmod(0o700)
    files = [settings.var_dir / "secret_key"]
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database:
        files += [Path(url.database + suffix) for suffix in ("", "-wal", "-shm")]
    for path in files:
        if path.exists():
            path.chmod(0o600)


async def _serve(args: argparse.Namespace, settings: Settings) -> None:
    host = args.host or settings.host
    port = args.port or settings.port
    ctx = None
    if args.tls == "self-signed":
        ctx = ssl_context(*ensure_self_signed(settings.var_dir / "tls"))
    elif args.tls_cert:
        ctx = ssl_context(Path(args.tls_cert), Path(args.tls_key))
    _private_files(settings)
    # keepalive_timeout also bounds how long a new connection may take to send its first request's
    # headers (aiohttp arms it at connect), so a slowloris client is dropped after this many seconds.
    runner = web.AppRunner(
        create_app(settings),
        access_log=None,
        keepalive_timeout=settings.read_timeout_seconds,
        max_line_size=8190,
        max_field_size=8190,
        max_headers=64,
    )
    await runner.setup()
    # Thousands of sockets make full GC passes take ~100 ms; freeze start-up objects (bench/SIGNALING_RESULTS.md).
    tune_gc_for_latency()
    # Half the shutdown budget for requests in flight; the rest for sockets, peers, Redis and the database.
    budget = settings.shutdown_timeout_seconds
    site = web.TCPSite(runner, host, port, ssl_context=ctx, shutdown_timeout=budget / 2)
    await site.start()
    scheme = "https" if ctx else "http"
    shown_host = "localhost" if host in ("127.0.0.1", "0.0.0.0", "::") else host  # noqa: S104
    base = settings.public_url or f"{scheme}://{shown_host}:{port}"
    print(f"Serving on {scheme}://{host}:{port}", flush=True)
    if args.demo:
        _print_demo(await _demo_info(settings), base)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    _exit_after(budget + 1.0)
    try:
        async with asyncio.timeout(budget):
            await runner.cleanup()
    except TimeoutError:
        logging.getLogger(__name__).error("shutdown did not finish within %d s; exiting anyway", budget)


def _exit_after(seconds: float) -> None:
    """Last resort for a shutdown stuck outside the event loop's reach (a hung thread or cancellation)."""

    def hard_exit() -> None:
        logging.getLogger(__name__).error("shutdown still running after %.0f s; exiting hard", seconds)
        os._exit(1)

    timer = threading.Timer(seconds, hard_exit)
    timer.daemon = True
    timer.start()


async def _users_add(args: argparse.Namespace, settings: Settings) -> None:
    password = os.environ.get("TELEHEALTH_NEW_PASSWORD") or getpass.getpass("Password: ")
    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as db, db.begin():
            user = await create_user(db, args.username, args.name or args.username, Role(args.role), password)
        print(f"created {user.role.value} {user.username}")
    finally:
        await engine.dispose()


def build_parser() -> argparse.ArgumentParser:
    """The CLI's argument parser."""
    parser = argparse.ArgumentParser(prog="telehealth", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the web server")
    serve.add_argument("--host", help="default TELEHEALTH_HOST or 127.0.0.1")
    serve.add_argument("--port", type=int, help="default TELEHEALTH_PORT or 8080")
    serve.add_argument("--tls", choices=["off", "self-signed"], default="off")
    serve.add_argument("--tls-cert")
    serve.add_argument("--tls-key")
    serve.add_argument("--demo", action="store_true", help="seed the demo clinic and print logins")
    db = sub.add_parser("db", help="database schema")
    db.add_argument("action", choices=["upgrade"])
    users = sub.add_parser("users", help="staff accounts")
    users_sub = users.add_subparsers(dest="users_command", required=True)
    add = users_sub.add_parser("add", help="add a staff user (password from TELEHEALTH_NEW_PASSWORD or prompt)")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=[r.value for r in Role])
    add.add_argument("--name")
    sub.add_parser("demo", help="seed the demo clinic and print logins and a join link")
    maintenance.add_commands(sub)
    measure_command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `telehealth` command."""
    args = build_parser().parse_args(argv)
    if args.command == "measure":  # photographs on disk: no settings, database or var/ needed
        return measure_command.run(args)
    os.umask(PRIVATE_UMASK)  # before settings: they may create var/ and the secret key
    settings = Settings.from_env()
    configure_logging(settings.log_format, settings.log_level)
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    if args.command in maintenance.COMMANDS:
        return maintenance.run(args, settings)
    try:
        if args.command == "serve":
            if bool(args.tls_cert) != bool(args.tls_key):
                raise SystemExit("--tls-cert and --tls-key go together")
            asyncio.run(_serve(args, settings))
        elif args.command == "db":
            upgrade_sync(settings.database_url)
            print("database is at the latest schema")
        elif args.command == "users":
            asyncio.run(_users_add(args, settings))
        elif args.command == "demo":
            _print_demo(asyncio.run(_demo_info(settings)), settings.public_url or "http://localhost:8080")
    except DomainError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    return 0
