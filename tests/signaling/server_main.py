"""Test-only server: signaling routes + MemoryGateway; `python -m tests.signaling.server_main`.

Prints `READY <port>` once listening. GET /_test/states returns the recorded visit states.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from aiohttp import web

from telehealth.signaling import SignalingSettings, setup_signaling
from tests.signaling.fakes import MemoryGateway

SECRET = b"two-process-test-secret-0123456789"


def build_app(redis_url: str | None, node_id: str, presence_ttl: float) -> web.Application:
    """The signaling app this test server runs."""
    gateway = MemoryGateway()
    settings = SignalingSettings(resume_secret=SECRET, redis_url=redis_url, node_id=node_id, presence_ttl=presence_ttl)
    app = web.Application()
    setup_signaling(app, gateway, settings)

    async def states(request: web.Request) -> web.Response:
        return web.json_response(gateway.states)

    app.router.add_get("/_test/states", states)
    return app


async def serve(port: int, redis_url: str | None, node_id: str, presence_ttl: float) -> None:
    """Run until SIGTERM/SIGINT."""
    runner = web.AppRunner(build_app(redis_url, node_id, presence_ttl), shutdown_timeout=5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    # With --port 0 the OS picks a free port: no race between servers started together.
    print(f"READY {runner.addresses[0][1]}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main() -> None:
    """Parse arguments and serve."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url")
    parser.add_argument("--node-id", default="node")
    parser.add_argument("--presence-ttl", type=float, default=15.0)
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args()
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(serve(args.port, args.redis_url, args.node_id, args.presence_ttl))


if __name__ == "__main__":
    main()
