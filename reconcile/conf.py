"""The reconcile's knobs, read from settings with working defaults."""

from django.conf import settings

LOCK_KEY = "paywatch:reconcile:lock"
# Consecutive "Midtrans unavailable" answers that open the circuit for the rest of a run.
CIRCUIT_THRESHOLD = 3
# A stored notification is re-applied at most this many times.
MAX_REAPPLY_ATTEMPTS = 5
# A webhook event still "received" after this long was abandoned mid-way (a killed process).
ABANDONED_AFTER_SECONDS = 120


def concurrency() -> int:
    """Return how many status calls may be in flight at once."""
    return max(1, int(getattr(settings, "RECONCILE_CONCURRENCY", 8)))


def max_calls_per_second() -> float:
    """Return the ceiling on Midtrans calls per second (0 or less: none)."""
    return float(getattr(settings, "RECONCILE_MAX_CALLS_PER_SECOND", 50.0))


def interval_seconds() -> float:
    """Return the schedule's interval in seconds."""
    return 60.0 * int(getattr(settings, "RECONCILE_INTERVAL_MINUTES", 5))


def call_timeout_seconds() -> float:
    """Return the longest one Midtrans call may take (connect + read timeouts)."""
    return float(settings.MIDTRANS["CONNECT_TIMEOUT"]) + float(settings.MIDTRANS["READ_TIMEOUT"])


def time_budget_seconds() -> float:
    """Return how long one run may keep issuing calls.

    It ends well before the next run is due and before django-q2 would kill
    the task (Q_CLUSTER timeout), leaving room for the calls still in flight.
    """
    ceiling = min(interval_seconds(), float(settings.Q_CLUSTER.get("timeout") or interval_seconds()))
    return max(5.0, 0.8 * ceiling - call_timeout_seconds())


def lock_timeout_seconds(budget: float) -> float:
    """Return a lock lifetime that outlives a run of ``budget`` seconds, and expires after a crash."""
    return budget + 2 * call_timeout_seconds() + 30.0


def outage_backoff_seconds() -> float:
    """Return how far a payment whose check hit an outage is pushed out."""
    return max(60.0, interval_seconds())


def circuit_open_seconds() -> float:
    """Return how long the shared circuit stays open once tripped: shorter than the interval, so the next run probes."""
    return max(5.0, min(60.0, 0.5 * interval_seconds()))


def chunk_size() -> int:
    """Return how many payments one chunk (one django-q2 task) checks."""
    return max(1, int(getattr(settings, "RECONCILE_CHUNK_SIZE", 100)))


def chunk_budget_seconds() -> float:
    """Return how long one chunk may keep issuing calls; what is left is released for the next run.

    Short, so that a killed worker's chunk is taken up again soon (its lease
    below), and well inside django-q2's task timeout.
    """
    return max(5.0, min(60.0, time_budget_seconds()))


def chunk_lease_seconds(budget: float) -> float:
    """Return how long a chunk holds the payments it claimed: its budget, the calls in flight, a margin.

    After that a payment a dead chunk never checked is due again, and the next run takes it.
    """
    return budget + 2 * call_timeout_seconds() + 5.0


def max_payments_per_run(budget: float, max_calls_per_second: float) -> int | None:
    """Return how many due payments one run enqueues: what the ceiling lets through in its time budget."""
    if max_calls_per_second <= 0:
        return None
    return max(1, int(max_calls_per_second * budget))
