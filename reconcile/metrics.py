"""Prometheus counters of the reconcile (served at /metrics with the rest)."""

from prometheus_client import Counter

runs = Counter("paywatch_reconcile_runs_total", "Reconcile runs, by how they ended", ["result"])
checks = Counter("paywatch_reconcile_checks_total", "Payments asked about, by result", ["result"])
circuit_trips = Counter("paywatch_reconcile_circuit_trips_total", "Runs that stopped calling Midtrans (outage)")
reapplied = Counter("paywatch_reconcile_reapplied_total", "Stored notifications re-applied, by outcome", ["outcome"])
cleanups = Counter("paywatch_cleanup_payments_total", "Overdue payments handled by the cleanup, by result",
                   ["result"])
watched_checks = Counter("paywatch_watched_checks_total",
                         "Fast-lane checks of payments watched by an open page, by result", ["result"])
