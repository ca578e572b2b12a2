"""Prometheus metrics of the payment flow (served at /metrics with every process's, project/metrics.py)."""

from prometheus_client import Counter, Histogram

webhooks = Counter("paywatch_webhooks_total", "Midtrans notifications received, by HTTP answer", ["status"])
observations = Counter(
    "paywatch_observations_total", "Observations applied to payments, by source and outcome", ["source", "outcome"]
)
transitions = Counter(
    "paywatch_transitions_total", "Payment status changes, by source and new status", ["source", "to"]
)
gateway_calls = Counter("paywatch_gateway_calls_total", "Calls to Midtrans, by operation and result", ["op", "result"])
gateway_latency = Histogram("paywatch_gateway_seconds", "Latency of calls to Midtrans", ["op"])
broadcasts = Counter("paywatch_broadcasts_total", "Status changes pushed to websocket groups, by result", ["result"])
refreshes = Counter("paywatch_refreshes_total", "Manual refresh requests, by result", ["result"])
paid_after_close = Counter(
    "paywatch_paid_after_close_total", "Settlements seen for orders already expired or cancelled (need a person)"
)

# Series the alert rules (deploy/prometheus-alerts.yml) take rates of exist from
# the start at 0: increase() cannot see the first step of a series born at 1.
for _status in ("200", "403"):
    webhooks.labels(status=_status)
for _result in ("sent", "error", "timeout", "dropped"):
    broadcasts.labels(result=_result)
