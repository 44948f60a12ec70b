"""The landmark pool: measurements happen in worker processes, and a worker that dies is replaced."""

from __future__ import annotations

import os
import signal

from telehealth.analysis.pool import LandmarkPool
from tests.analysis.faces import astronaut_still, png


async def test_a_killed_worker_is_replaced_and_the_next_still_is_measured() -> None:
    pool = LandmarkPool(workers=1, max_pending=2, runs=1)
    pool.start()
    try:
        [pid] = await pool.warm()
        assert pid != os.getpid()
        os.kill(pid, signal.SIGKILL)
        result = await pool.measure(png(astronaut_still()))
        assert result.detection.status == "ok" and result.summary is not None
        assert pool.pids() and pid not in pool.pids()
    finally:
        await pool.close()
