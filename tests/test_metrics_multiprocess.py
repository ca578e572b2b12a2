"""With PROMETHEUS_MULTIPROC_DIR, one scrape of any web process shows every process's metrics."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from django_q.conf import Conf
from django_q.tasks import async_task
from prometheus_client import REGISTRY, Gauge
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

from paywatch_dev.servers import wait_until
from project import metrics as project_metrics

ROOT = Path(__file__).resolve().parents[1]


def sample_names(text: str) -> set[str]:
    return {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}


def run_in_another_process(directory: Path, code: str) -> None:
    """Run Django code in a separate Python process writing its metrics to ``directory``."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory), "DJANGO_SETTINGS_MODULE": "project.settings"}
    subprocess.run([sys.executable, "-c", f"import django; django.setup(); {code}"], cwd=ROOT, env=env,
                   check=True, timeout=60)


@pytest.mark.django_db
def test_a_scrape_sums_the_counters_every_process_wrote(client, tmp_path, monkeypatch) -> None:
    for runs in (2, 3):  # two "workers", each gone by the time of the scrape
        run_in_another_process(tmp_path, f"from reconcile import metrics; metrics.runs.labels(result='ok').inc({runs})")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    families = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").content.decode())}
    runs = {s.labels["result"]: s.value for s in families["paywatch_reconcile_runs"].samples}
    assert runs["ok"] == 5
    # The database-read gauges come with them.
    assert "paywatch_reconcile_lag_seconds" in families


def test_live_gauges_of_dead_processes_are_dropped_and_the_living_and_counters_kept(tmp_path) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True).stdout.strip()
    for name in (f"gauge_livesum_{gone}.db", f"counter_{gone}.db", f"gauge_livesum_{os.getpid()}.db"):
        MmapedDict(str(tmp_path / name)).close()
    assert project_metrics.mark_dead_processes(str(tmp_path)) == [int(gone)]
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        [f"counter_{gone}.db", f"gauge_livesum_{os.getpid()}.db"])


def test_every_paywatch_gauge_says_how_processes_combine() -> None:
    """A gauge left in the default mode ("all") would keep a series per dead pid forever."""
    gauges = [c for c in REGISTRY._collector_to_names if isinstance(c, Gauge) and c._name.startswith("paywatch_")]
    assert [g._name for g in gauges if g._multiprocess_mode == "all"] == []


@pytest.mark.e2e
def test_one_scrape_of_the_web_shows_the_worker_and_web_counters(stack, transactional_db, monkeypatch) -> None:
    # django-q2 signs tasks with the SECRET_KEY it read at import; the stack's processes have their own.
    monkeypatch.setattr(Conf, "SECRET_KEY", stack.env["SECRET_KEY"])
    worker = stack.start_worker()
    try:
        async_task("reconcile.tasks.reconcile_pending")  # runs in a qcluster worker process, not in daphne
        requests.post(stack.notify_url, data=b"{", timeout=10)  # a 400 counted by daphne

        def scraped() -> set[str] | None:
            text = requests.get(f"{stack.web_url}/metrics", timeout=10).text
            names = sample_names(text)
            return names if "paywatch_reconcile_runs_total" in names else None

        names = wait_until(scraped, timeout=60)
    finally:
        worker.stop()
    assert names, "the worker's reconcile counter never reached the web's /metrics"
    assert {"paywatch_webhooks_total", "django_http_requests_total_by_method_total",
            "paywatch_reconcile_lag_seconds"} <= names
    assert list(stack.metrics_dir.glob("counter_*.db")), "no per-process files: multiprocess mode is off"
