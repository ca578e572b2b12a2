"""``/metrics``: every process's metrics in one scrape, behind a bearer token when METRICS_TOKEN is set.

With ``PROMETHEUS_MULTIPROC_DIR`` set (deploy/, ``make run``), prometheus_client
keeps each process's counters and histograms in files there, so any web process
answers for all of them: the other web processes and the qcluster workers.
Without it (a single process) the scrape shows this process only, as before.
Either way the gauges read from the database at scrape time are added
(project/state_metrics.py): they are the same from every process.
"""

import glob
import hmac
import os
from collections.abc import Iterable

import prometheus_client
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from prometheus_client import multiprocess
from prometheus_client.registry import Collector, CollectorRegistry

from project.state_metrics import StateCollector

# prometheus_client switches to multiprocess storage when the name is present,
# even empty, so the same test decides here.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> str | None:
    """Return the shared metrics directory, or None when each process keeps its own metrics."""
    return os.environ[MULTIPROC_ENV] if MULTIPROC_ENV in os.environ else None


def metrics(request: HttpRequest) -> HttpResponse:
    """Export the Prometheus metrics; 403 without ``Authorization: Bearer <METRICS_TOKEN>`` when one is set."""
    expected = settings.METRICS_TOKEN
    if expected:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        # compare_digest: the time taken must not tell how much of a guess was right.
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected.encode()):
            return HttpResponseForbidden("A valid metrics token is required.\n", content_type="text/plain")
    body = prometheus_client.generate_latest(scrape_registry())
    return HttpResponse(body, content_type=prometheus_client.CONTENT_TYPE_LATEST)


def scrape_registry() -> CollectorRegistry:
    """Return a registry for one scrape: the processes' metrics plus the database's state."""
    registry = CollectorRegistry()
    directory = multiprocess_dir()
    if directory is not None:
        mark_dead_processes(directory)
        multiprocess.MultiProcessCollector(registry, path=directory)
    else:
        registry.register(_Relay(prometheus_client.REGISTRY))
    registry.register(StateCollector())
    return registry


def mark_dead_processes(directory: str) -> list[int]:
    """Drop the live gauges of processes that are gone; return their pids.

    Any process may die (a recycled or killed qcluster worker, a restarted
    daphne); only its ``live*`` gauges must go with it (counters and
    histograms of the dead keep counting in the sums). django-q2 marks the
    workers it reincarnates; doing it here covers every other process on
    this host, which is the only one writing to ``directory``.
    """
    dead = set()
    for path in glob.glob(os.path.join(directory, "gauge_live*_*.db")):
        pid = int(os.path.basename(path)[:-3].rsplit("_", 1)[1])
        if not _alive(pid):
            dead.add(pid)
    for pid in dead:
        multiprocess.mark_process_dead(pid, directory)
    return sorted(dead)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


class _Relay(Collector):
    """Yield another registry's metrics (the default one, in single-process mode)."""

    def __init__(self, source: CollectorRegistry) -> None:
        self.source = source

    def collect(self) -> Iterable[prometheus_client.Metric]:
        return self.source.collect()
