"""Prometheus metrics of the reconcile (served at /metrics with the rest).

The lag (the oldest due payment's age, across every worker) is
``paywatch_reconcile_lag_seconds``, read from the database at scrape time by
project/state_metrics.py.
"""

from prometheus_client import Counter, Gauge

runs = Counter("paywatch_reconcile_runs_total", "Reconcile runs, by how they ended", ["result"])
checks = Counter("paywatch_reconcile_checks_total", "Payments asked about, by result", ["result"])
circuit_trips = Counter("paywatch_reconcile_circuit_trips_total", "Runs that stopped calling Midtrans (outage)")
reapplied = Counter("paywatch_reconcile_reapplied_total", "Stored notifications re-applied, by outcome", ["outcome"])
cleanups = Counter("paywatch_cleanup_payments_total", "Overdue payments handled by the cleanup, by result",
                   ["result"])
watched_checks = Counter("paywatch_watched_checks_total",
                         "Fast-lane checks of payments watched by an open page, by result", ["result"])
chunks = Counter("paywatch_reconcile_chunks_total",
                 "Reconcile chunks: queued by a coordinator, started and done by a worker, by event", ["event"])
# Read from Redis (every worker's chunks) each time a process changes them; the newest value written wins.
chunks_now = Gauge("paywatch_reconcile_chunks_now", "Reconcile chunks queued or running now, across every worker",
                   ["state"], multiprocess_mode="mostrecent")
permits = Counter("paywatch_midtrans_permits_total",
                  "Slots asked of the shared calls-per-second budget, by answer (granted: a call was made)",
                  ["result"])
ceiling = Gauge("paywatch_midtrans_max_calls_per_second",
                "The shared ceiling on Midtrans calls per second (RECONCILE_MAX_CALLS_PER_SECOND)",
                multiprocess_mode="mostrecent")

for _event in ("queued", "started", "done", "lost"):
    chunks.labels(event=_event)
for _result in ("granted", "no_slot", "circuit"):
    permits.labels(result=_result)
