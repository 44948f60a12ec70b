"""A bounded pool of worker processes, each holding one loaded Face Mesh model."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from telehealth.analysis.landmarks import DEFAULT_RUNS, Detection, Detector
from telehealth.analysis.still import StillResult, measure_bytes

log = logging.getLogger(__name__)

_detector: Detector | None = None  # one per worker process, loaded by the initializer


def _init_worker(runs: int) -> None:
    """Load the model once when the worker process starts."""
    global _detector
    _detector = Detector(runs)


def _measure_in_worker(data: bytes) -> StillResult:
    """Decode, detect and measure in the worker (runs in the child process)."""
    if _detector is None:  # pragma: no cover - the initializer always ran
        raise RuntimeError("worker not initialised")
    return measure_bytes(_detector, data)


def _warm(delay: float) -> int:
    """Keep a worker busy briefly so that a batch of these starts every worker (and loads every model)."""
    time.sleep(delay)
    return multiprocessing.current_process().pid or 0


class LandmarkPool:
    """Landmark detection off the event loop: ``workers`` processes, at most ``max_pending`` jobs queued."""

    def __init__(self, workers: int = 1, max_pending: int = 8, runs: int = DEFAULT_RUNS) -> None:
        if workers < 1 or max_pending < workers:
            raise ValueError("need workers >= 1 and max_pending >= workers")
        self.workers = workers
        self.runs = runs
        # Bounds what waits inside the executor (its own queue is unbounded); callers wait here instead.
        self._slots = asyncio.Semaphore(max_pending)
        self._executor: ProcessPoolExecutor | None = None

    def _new_executor(self) -> ProcessPoolExecutor:
        # spawn, not fork: the server process has threads (executors, database drivers) that fork would copy.
        ctx = multiprocessing.get_context("spawn")
        return ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init_worker, initargs=(self.runs,))

    def start(self) -> None:
        """Create the executor; worker processes start (and load the model) on the first job or :meth:`warm`."""
        self._executor = self._new_executor()

    async def warm(self) -> list[int]:
        """Start every worker and load its model now, so the first still is not slow; returns worker pids."""
        if self._executor is None:
            raise RuntimeError("landmark pool not started")
        loop = asyncio.get_running_loop()
        pids = await asyncio.gather(*(loop.run_in_executor(self._executor, _warm, 0.2) for _ in range(self.workers)))
        return sorted(set(pids))

    async def measure(self, data: bytes) -> StillResult:
        """Landmarks and own-scale metrics of one encoded still, computed in a worker process.

        A dead worker (out of memory, a native crash) breaks the whole executor: it is replaced and
        the still tried once more; a still that breaks it twice is an ``error`` reading.
        """
        async with self._slots:
            loop = asyncio.get_running_loop()
            for _ in range(2):
                executor = self._executor
                if executor is None:
                    raise RuntimeError("landmark pool not started")
                try:
                    return await loop.run_in_executor(executor, _measure_in_worker, data)
                except BrokenProcessPool:
                    log.warning("a landmark worker died; replacing the pool")
                    await self._replace(executor)
        return StillResult(Detection("error", 0, 0, error="the landmark worker crashed on this still"), None, 0.0)

    async def _replace(self, broken: ProcessPoolExecutor) -> None:
        """Swap in a new executor (once, however many jobs saw the old one break) and discard the old one."""
        if self._executor is broken:
            self._executor = self._new_executor()
        await asyncio.to_thread(broken.shutdown, wait=False, cancel_futures=True)

    def pids(self) -> list[int]:
        """Process ids of the live workers (for memory figures)."""
        procs = getattr(self._executor, "_processes", None) or {}
        return sorted(int(pid) for pid in procs)

    async def close(self) -> None:
        """Stop the workers (waits for running jobs; queued ones are cancelled)."""
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)
