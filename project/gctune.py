"""Garbage-collector settings for the long-running web process.

With a thousand open websockets, CPython's default thresholds (700, 10, 10)
ran a full collection every few seconds in daphne, each pausing every socket
and request for 80-160 ms: most of the push latency's p99. Freezing what
exists after start-up (Django, the URL conf, the app registry) takes it out of
every later collection; a young generation of 2,000 keeps each minor pause
under 5 ms (50,000 made them 35-40 ms). The middle generation is collected
every 10 young collections, not 100: an open socket's objects (its consumer's
coroutines, futures, queue, headers: ~64 each) stay young until such a
collection promotes them, and at 2,500 sockets a process, after a burst of
connections, one every 100 held the GIL for 94-148 ms of CPU; every 10, for
5-43 ms (half under 15). Full collections stay as rare as before (every
200 million net allocations: 10,000 x 10 x 2,000): with thousands of
sockets one takes 300-600 ms. Cycles are still collected. Measured in docs/benchmarks.md;
GC_THRESHOLDS overrides it.
"""

import gc
import os

DEFAULT_THRESHOLDS = (2_000, 10, 10_000)


def tune_gc() -> tuple[int, ...]:
    """Freeze start-up objects and apply GC_THRESHOLDS ("g0,g1,g2", or "default")."""
    raw = os.environ.get("GC_THRESHOLDS", "").strip()
    if raw == "default":
        return gc.get_threshold()
    thresholds = tuple(int(part) for part in raw.split(",")) if raw else DEFAULT_THRESHOLDS
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)
    return gc.get_threshold()
