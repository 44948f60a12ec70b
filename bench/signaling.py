"""Signaling benchmark: N visits relaying offer/answer/ICE-sized messages over WebSockets.

    PYTHONPATH=. .venv/bin/python bench/signaling.py [--visits 1000] [--rate 2000] [--duration 20]

Scenarios, each with its servers in separate processes from this load generator, loopback only:
  echo    a bare aiohttp WebSocket echo server (the baseline): each message returns to its sender
  single  one signaling process, in-process broker: patient and clinician on the same process
  redis   two signaling processes sharing Redis: patients on one, clinicians on the other
For each: paced phase (--rate messages/s in total, one-way latency from send to receipt by the
peer, both measured in this process), then a burst phase (one message in flight per visit,
ping-pong) for the maximum rate, and the servers' RSS growth per visit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
PYPATH = os.environ.get("PYTHONPATH", "")
SECRET = b"bench-resume-secret-0123456789"
OFFER_BYTES, ANSWER_BYTES, CANDIDATE = 3800, 3200, "candidate:842163049 1 udp 1677729535 "
# One negotiation round: offer, answer, four candidates each way (~0.8 KB on average).
ROUND = ["offer", "answer"] + ["cand_doc", "cand_pat"] * 4


def raise_fd_limit() -> None:
    """2,000 sockets per side need more than the usual 1,024 descriptors."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def rss_kib(pid: int) -> int:
    """Resident set size of a process in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int | None = None) -> float:
    """CPU seconds used by a process (user+system), or by the whole machine if pid is None."""
    tick = os.sysconf("SC_CLK_TCK")
    if pid is None:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        busy = sum(int(v) for i, v in enumerate(fields) if i not in (3, 4))  # minus idle, iowait
        return busy / tick
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(stat[11]) + int(stat[12])) / tick


class CpuMeter:
    """Share of the machine used by this benchmark's processes vs. everything else."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.start = time.perf_counter()
        self.machine = cpu_seconds()
        self.ours = sum(cpu_seconds(p) for p in pids)

    def read(self) -> tuple[float, float]:
        """(our cores, other cores) used on average since creation."""
        wall = time.perf_counter() - self.start
        ours = sum(cpu_seconds(p) for p in self.pids) - self.ours
        machine = cpu_seconds() - self.machine
        return ours / wall, max(0.0, machine - ours) / wall


async def wait_quiet(limit: float) -> None:
    """Wait (at most limit seconds) until other processes use under 0.3 cores: a shared machine."""
    deadline = time.perf_counter() + limit
    while time.perf_counter() < deadline:
        before = cpu_seconds()
        await asyncio.sleep(2)
        if (cpu_seconds() - before) / 2 < 0.3:
            return
    print(f"machine still busy after {limit:g} s; measuring anyway", file=sys.stderr)


# --- servers (run as child processes) --------------------------------------------------------


class BenchGateway:
    """Accepts `sess:<user>` clinicians and `join:<visit>:<participant>` patients."""

    async def authenticate_clinician(self, session_token: str, visit_id: str) -> Any:
        """Any `sess:` cookie is the clinician of any visit."""
        from telehealth.signaling import Identity, Role

        return Identity(f"c-{visit_id}", Role.CLINICIAN, "Dr Bench", visit_id, "bench", "bench")

    async def authenticate_patient(self, join_token: str) -> Any:
        """`join:<visit>:<participant>`."""
        from telehealth.signaling import Identity, Role

        _, visit_id, pid = join_token.split(":")
        return Identity(pid, Role.PATIENT, "Patient", visit_id, None, "bench")

    async def set_visit_state(self, visit_id: str, state: str) -> None:
        """Nothing is persisted in the benchmark."""

    async def clinician_for_lobby(self, session_token: str) -> str | None:
        """No dashboards in the benchmark."""
        return None


async def run_server(app: web.Application, port: int, tune_gc: bool) -> None:
    """Serve app until SIGTERM; prints READY once listening."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=4096).start()
    bound = runner.addresses[0][1]  # port 0 lets the OS pick: no race between two servers
    if tune_gc:
        from telehealth.signaling import tune_gc_for_latency

        tune_gc_for_latency()
    print(f"READY {bound}", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await runner.cleanup()


def signaling_app(redis_url: str | None, node: str) -> web.Application:
    """The real signaling routes with the benchmark gateway."""
    from telehealth.signaling import SignalingSettings, setup_signaling

    app = web.Application()
    settings = SignalingSettings(resume_secret=SECRET, redis_url=redis_url, node_id=node)
    setup_signaling(app, BenchGateway(), settings)
    return app


def echo_app() -> web.Application:
    """A bare aiohttp WebSocket echo server: the floor any relay is compared with."""

    async def echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=20, compress=False)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type is aiohttp.WSMsgType.TEXT:
                await ws.send_str(msg.data)
        return ws

    app = web.Application()
    app.router.add_get("/ws/visit/{visit_id}", echo)
    return app


# --- load generator --------------------------------------------------------------------------


@dataclass
class Stats:
    """Latencies and counters of one phase."""

    latencies: list[float] = field(default_factory=list)
    sent: int = 0
    received: int = 0
    errors: int = 0
    recording: bool = False


@dataclass
class Visit:
    """Two sockets; in the echo scenario each message comes back to its sender."""

    index: int
    doc: aiohttp.ClientWebSocketResponse
    pat: aiohttp.ClientWebSocketResponse
    echo: bool


def payload(kind: str, visit: Visit, stamp: float) -> str:
    """A message of realistic size whose first SDP line / candidate field carries the send time."""
    head = f"{stamp!r}\r\n"
    peer = f"c-v{visit.index}" if kind in ("answer", "cand_pat") else f"p{visit.index}"
    if kind in ("offer", "answer"):
        size = OFFER_BYTES if kind == "offer" else ANSWER_BYTES
        body = {"type": kind, "v": 1, "id": "b", "peer": peer, "sdp": head + "a" * size}
    else:
        cand = {"candidate": CANDIDATE + f"{stamp!r} 9 typ host", "sdpMid": "0"}
        body = {"type": "ice_candidate", "v": 1, "id": "b", "peer": peer, "candidate": cand}
    return json.dumps(body)


def stamp_of(data: dict[str, Any]) -> float | None:
    """The send time embedded by payload()."""
    if "sdp" in data:
        return float(data["sdp"].split("\r\n", 1)[0])
    cand = data.get("candidate")
    if isinstance(cand, dict):
        return float(cand["candidate"][len(CANDIDATE) :].split(" ", 1)[0])
    return None


def sender_of(kind: str, visit: Visit) -> aiohttp.ClientWebSocketResponse:
    """Clinician sends offers and its candidates, the patient answers."""
    return visit.doc if kind in ("offer", "cand_doc") else visit.pat


async def reader(ws: aiohttp.ClientWebSocketResponse, stats: Stats, bounce: asyncio.Queue[Any] | None) -> None:
    """Record the latency of every relayed message; in burst mode, answer at once."""
    async for msg in ws:
        if msg.type is not aiohttp.WSMsgType.TEXT:
            break
        now = time.perf_counter()
        data = json.loads(msg.data)
        if data["type"] == "error":
            stats.errors += 1
            continue
        stamp = stamp_of(data)
        if stamp is None:
            continue
        stats.received += 1
        if stats.recording:
            stats.latencies.append(now - stamp)
        if bounce is not None:
            bounce.put_nowait((ws, data["type"]))


async def expect(ws: aiohttp.ClientWebSocketResponse, kind: str) -> dict[str, Any]:
    """Read until a message of this type arrives (setup phase only)."""
    while True:
        msg = await ws.receive(timeout=30)
        if msg.type is not aiohttp.WSMsgType.TEXT:
            raise RuntimeError(f"socket closed waiting for {kind}: {msg}")
        data: dict[str, Any] = json.loads(msg.data)
        if data["type"] == kind:
            return data


async def open_visit(http: aiohttp.ClientSession, index: int, pat_base: str, doc_base: str, echo: bool) -> Visit:
    """Patient joins and waits, clinician joins and admits (echo: just two sockets)."""
    pat = await http.ws_connect(f"{pat_base}/ws/visit/v{index}", autoping=True)
    headers = {"Origin": doc_base, "Cookie": "th_session=sess:bench"}
    if echo:
        doc = await http.ws_connect(f"{doc_base}/ws/visit/v{index}", headers=headers)
        return Visit(index, doc, pat, echo)
    await pat.send_str(json.dumps({"type": "auth", "v": 1, "id": "a", "token": f"join:v{index}:p{index}"}))
    await expect(pat, "waiting")
    doc = await http.ws_connect(f"{doc_base}/ws/visit/v{index}", headers=headers)
    await doc.send_str(json.dumps({"type": "auth", "v": 1, "id": "a", "session": True}))
    await expect(doc, "join")
    await doc.send_str(json.dumps({"type": "admit", "v": 1, "id": "b", "participant_id": f"p{index}"}))
    await expect(pat, "admit")
    return Visit(index, doc, pat, echo)


async def paced(visits: list[Visit], stats: Stats, rate: float, duration: float) -> float:
    """Each visit sends its rounds at rate/len(visits) per second, with a random phase."""
    interval = len(visits) / rate
    start = time.perf_counter() + 0.5
    deadline = start + duration

    async def one(visit: Visit) -> None:
        step = random.randrange(len(ROUND))
        at = start + random.random() * interval
        while at < deadline:
            await asyncio.sleep(max(0.0, at - time.perf_counter()))
            kind = ROUND[step % len(ROUND)]
            await sender_of(kind, visit).send_str(payload(kind, visit, time.perf_counter()))
            stats.sent += 1
            step += 1
            at += interval

    await asyncio.gather(*(one(v) for v in visits))
    await asyncio.sleep(1.0)  # let the last messages arrive
    return deadline - start


async def burst(visits: list[Visit], stats: Stats, bounce: asyncio.Queue[Any], seconds: float) -> None:
    """One message in flight per visit, bounced back and forth as fast as the system allows."""
    by_ws: dict[int, Visit] = {}
    for visit in visits:
        by_ws[id(visit.doc)] = by_ws[id(visit.pat)] = visit
    deadline = time.perf_counter() + seconds

    async def bouncer() -> None:
        while True:
            ws, _kind = await bounce.get()
            if time.perf_counter() >= deadline:
                continue
            visit = by_ws[id(ws)]
            kind = "cand_pat" if ws is visit.pat else "cand_doc"
            if visit.echo:
                kind = "cand_doc" if ws is visit.doc else "cand_pat"
            await sender_of(kind, visit).send_str(payload(kind, visit, time.perf_counter()))
            stats.sent += 1

    task = asyncio.create_task(bouncer())
    for visit in visits:
        await visit.doc.send_str(payload("cand_doc", visit, time.perf_counter()))
        stats.sent += 1
    await asyncio.sleep(seconds + 0.5)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def pct(values: list[float], q: float) -> float:
    """q-th percentile in milliseconds."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] * 1000


@dataclass
class Result:
    """One scenario's figures."""

    name: str
    visits: int
    paced: Stats
    paced_seconds: float
    burst: Stats
    burst_seconds: float
    rss_per_visit_kib: float
    setup_seconds: float
    cores_ours: float
    cores_other: float


async def spawn(args: list[str], procs: list[asyncio.subprocess.Process]) -> str:
    """Start a server child process (added to procs at once); returns its base URL."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, *args, stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), PYPATH]))},
        cwd=ROOT,
    )  # fmt: skip
    procs.append(proc)
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 30)
    if not line.startswith(b"READY"):
        raise RuntimeError(f"server {args} did not start")
    return f"http://127.0.0.1:{int(line.split()[1])}"


async def scenario(name: str, opts: argparse.Namespace) -> Result:
    """Run one scenario end to end."""
    if opts.wait_quiet:
        await wait_quiet(opts.wait_quiet)
    gc_flag = ["--no-gc-tuning"] if opts.no_gc_tuning else []
    procs: list[asyncio.subprocess.Process] = []
    try:
        if name == "echo":
            bases = [await spawn(["echo", "--port", "0"], procs)] * 2
        elif name == "single":
            serve = ["serve", "--port", "0", "--node", "single", *gc_flag]
            bases = [await spawn(serve, procs)] * 2
        else:
            redis = ["--redis-url", opts.redis_url, *gc_flag]
            bases = [await spawn(["serve", "--port", "0", "--node", f"n{i}", *redis], procs) for i in range(2)]
        await asyncio.sleep(0.5)
        before = sum(rss_kib(p.pid) for p in procs)
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as http:
            gate = asyncio.Semaphore(100)

            async def opened(i: int) -> Visit:
                async with gate:
                    return await open_visit(http, i, bases[0], bases[1], name == "echo")

            t0 = time.perf_counter()
            visits = await asyncio.gather(*(opened(i) for i in range(opts.visits)))
            setup = time.perf_counter() - t0
            paced_stats, burst_stats = Stats(), Stats()
            bounce: asyncio.Queue[Any] = asyncio.Queue()
            readers = [asyncio.create_task(reader(ws, paced_stats, None)) for v in visits for ws in (v.doc, v.pat)]
            # Warm-up round not recorded (first JIT-free paths, allocator growth).
            await paced(visits, paced_stats, opts.rate, 2.0)
            paced_stats.recording = True
            paced_stats.sent = paced_stats.received = 0
            meter = CpuMeter([os.getpid()] + [p.pid for p in procs])
            seconds = await paced(visits, paced_stats, opts.rate, opts.duration)
            cores_ours, cores_other = meter.read()
            rss = (sum(rss_kib(p.pid) for p in procs) - before) / opts.visits
            for task in readers:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
            burst_stats.recording = True
            readers = [asyncio.create_task(reader(ws, burst_stats, bounce)) for v in visits for ws in (v.doc, v.pat)]
            await burst(list(visits), burst_stats, bounce, opts.burst)
            for task in readers:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
            await asyncio.gather(*(ws.close() for v in visits for ws in (v.doc, v.pat)))
        return Result(
            name, opts.visits, paced_stats, seconds, burst_stats, opts.burst, rss, setup,
            cores_ours, cores_other,
        )  # fmt: skip
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.terminate()
        for proc in procs:
            await proc.wait()


LABELS = {
    "echo": "baseline: bare aiohttp echo, 1 process",
    "single": "signaling, 1 process (in-process broker)",
    "redis": "signaling, 2 processes via Redis",
}
GOALS = {"single": 5.0, "redis": 10.0}


def report(results: list[Result], opts: argparse.Namespace) -> None:
    """Print the figures as a Markdown table plus the goal check."""
    print(f"\nvisits={opts.visits} ({2 * opts.visits} WebSockets), paced rate={opts.rate:g} msg/s "
          f"for {opts.duration:g} s, burst {opts.burst:g} s, cores={os.cpu_count()}")  # fmt: skip
    print("| scenario | paced msg/s | p50 ms | p99 ms | max ms | lost | errors "
          "| burst msg/s | burst p50 ms | burst p99 ms | burst errors "
          "| server RSS/visit KiB | setup s | cores: bench / others |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        lat = r.paced.latencies
        lost = r.paced.sent - r.paced.received
        print(
            f"| {LABELS[r.name]} | {r.paced.received / r.paced_seconds:,.0f} | {pct(lat, 50):.2f} "
            f"| {pct(lat, 99):.2f} | {max(lat) * 1000 if lat else float('nan'):.1f} | {lost} "
            f"| {r.paced.errors} | {r.burst.received / r.burst_seconds:,.0f} "
            f"| {pct(r.burst.latencies, 50):.2f} | {pct(r.burst.latencies, 99):.2f} "
            f"| {r.burst.errors} "
            f"| {r.rss_per_visit_kib:.1f} | {r.setup_seconds:.1f} "
            f"| {r.cores_ours:.2f} / {r.cores_other:.2f} |"
        )
    for r in results:
        if r.name in GOALS:
            p99 = pct(r.paced.latencies, 99)
            verdict = "MET" if p99 <= GOALS[r.name] else "MISSED"
            print(f"goal {LABELS[r.name]}: p99 {p99:.2f} ms <= {GOALS[r.name]:g} ms: {verdict}")


def main() -> None:
    """Parse arguments; run servers or the load generator."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd")
    serve = sub.add_parser("serve")
    serve.add_argument("--port", type=int, required=True)
    serve.add_argument("--node", default="n")
    serve.add_argument("--redis-url")
    serve.add_argument("--no-gc-tuning", action="store_true")
    echo = sub.add_parser("echo")
    echo.add_argument("--port", type=int, required=True)
    parser.add_argument("--visits", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=2000.0, help="paced messages/s, all visits")
    parser.add_argument("--duration", type=float, default=20.0, help="paced phase seconds")
    parser.add_argument("--burst", type=float, default=5.0, help="burst phase seconds")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--scenarios", default="echo,single,redis")
    parser.add_argument("--no-gc-tuning", action="store_true", help="servers keep CPython's default GC thresholds")
    parser.add_argument("--wait-quiet", type=float, default=0.0, help="wait up to N s for an idle machine")
    opts = parser.parse_args()
    raise_fd_limit()
    if opts.cmd == "serve":
        asyncio.run(run_server(signaling_app(opts.redis_url, opts.node), opts.port, not opts.no_gc_tuning))
    elif opts.cmd == "echo":
        asyncio.run(run_server(echo_app(), opts.port, False))
    else:
        opts.visits = max(1, min(opts.visits, 5000))
        opts.duration = max(1.0, min(opts.duration, 120.0))

        async def run_all() -> list[Result]:
            return [await scenario(name, opts) for name in opts.scenarios.split(",")]

        started = time.perf_counter()
        results = asyncio.run(run_all())
        report(results, opts)
        print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
