"""What machine a benchmark ran on, for the figures in docs/benchmarks.md."""

import os
import platform
from pathlib import Path


def machine() -> str:
    """Return CPUs, CPU model and Python version."""
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{len(os.sched_getaffinity(0))} CPUs, {model}, Python {platform.python_version()}"
