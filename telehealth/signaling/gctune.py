"""Garbage-collector settings for a latency-sensitive signaling process (process-wide)."""

from __future__ import annotations

import gc

# Every gen-1 pass promotes whatever coroutines and futures are pending at that moment; with
# 2,000 sockets the default 700 threshold made a ~100-600 ms full collection run every ~15 s,
# which alone broke a 5 ms p99. A larger gen-0 threshold makes full collections rare.
GEN0_THRESHOLD = 20_000


def tune_gc_for_latency() -> None:
    """Call once from the process entry point, after imports and app setup, before serving."""
    gc.collect()
    # Objects that live for the whole process (modules, routes, models) are never scanned again.
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)
