"""Garbage-collector settings for the long-running web process.

With a thousand open websockets, CPython's default thresholds (700, 10, 10)
ran a full collection every few seconds in daphne, each pausing every socket
and request for 80-160 ms: most of the push latency's p99. Freezing what
exists after start-up (Django, the URL conf, the app registry) takes it out of
every later collection; a young generation of 2,000 keeps each minor pause
under 5 ms (50,000 made them 35-40 ms), and rare older collections keep the
20-30 ms ones to one every ~15 s under load. Cycles are still collected.
Measured in docs/benchmarks.md; GC_THRESHOLDS overrides it.
"""

import gc
import os

DEFAULT_THRESHOLDS = (2_000, 100, 1_000)


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
