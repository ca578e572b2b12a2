"""Notification delivery in background threads, with Midtrans's retry schedule; the control API's notify modes."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urljoin

import requests

from simulator.engine import BadRequest
from simulator.payloads import now
from simulator.store import Store

RETRY_MINUTES = (2, 10, 30, 90, 210)
BODY_LIMIT = 500


def max_retries(http_status: int | None) -> int:
    """Return how many retries Midtrans makes after this answer (None = no answer)."""
    if http_status is None:
        return 5
    if 200 <= http_status < 300 or 300 <= http_status < 400:
        return 0
    return {500: 1, 503: 4, 400: 2, 404: 2}.get(http_status, 5)


def notify_mode(mode: str | None) -> tuple[str, float]:
    """Parse a control-API notify mode (send|drop|duplicate|reorder|delay:<seconds>); return it and the delay."""
    mode = (mode or "send").strip().lower()
    if mode.startswith("delay:"):
        try:
            seconds = float(mode.split(":", 1)[1])
        except ValueError:
            raise BadRequest(f"bad notify mode {mode!r}") from None
        if seconds < 0:
            raise BadRequest("delay must not be negative")
        return "delay", seconds
    if mode not in ("send", "drop", "duplicate", "reorder"):
        raise BadRequest(f"bad notify mode {mode!r}; use send|drop|duplicate|reorder|delay:<seconds>")
    return mode, 0.0


def to_deliver(mode: str, payload: dict[str, Any], previous: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Return the payloads a move delivers, in order, for a notify mode (``previous``: the move before)."""
    if mode == "drop":
        return []
    if mode == "duplicate":
        return [payload, payload]
    if mode == "reorder" and previous is not None:
        return [payload, previous]
    return [payload]


class Notifier:
    """Send notification payloads, each delivery to each URL in its own thread with its own retries."""

    def __init__(self, store: Store, url: str, retry_scale: float, stop: threading.Event,
                 log: Callable[[str], None] | None = None) -> None:
        self.store = store
        self.url = url
        self.retry_scale = retry_scale
        self.timeout = max(2.0, 15.0 * min(1.0, retry_scale))
        self.stop = stop
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))

    def dispatch(self, order_id: str, payloads: list[dict[str, Any]], delay: float = 0.0,
                 urls: list[str] | None = None) -> None:
        """Deliver payloads in order (after delay seconds) to each URL (default: the configured one).

        Every URL gets its own chain, as Midtrans treats each URL of
        X-Override-Notification / X-Append-Notification separately.
        """
        if not payloads:
            return
        generation = self.store.generation
        for url in urls or [self.url]:
            thread = threading.Thread(
                target=self._run, args=(order_id, payloads, delay, generation, url),
                name=f"notify-{order_id}", daemon=True,
            )
            thread.start()

    def _run(self, order_id: str, payloads: list[dict[str, Any]], delay: float, generation: int, url: str) -> None:
        if delay and self.stop.wait(delay):
            return
        for payload in payloads:
            if not self._deliver(order_id, payload, generation, url):
                return

    def _next_delivery_id(self, order_id: str) -> int:
        """Number deliveries per transaction, 1-based."""
        with self.store.lock:
            tx = self.store.get(order_id)
            if tx is None:
                return 0
            tx.deliveries += 1
            return tx.deliveries

    def _deliver(self, order_id: str, payload: dict[str, Any], generation: int, url: str) -> bool:
        """Deliver one payload with retries; return False when delivery should stop (shutdown, reset)."""
        delivery = self._next_delivery_id(order_id)
        attempt = 0
        while True:
            attempt += 1
            record = self._attempt(payload, url)
            retries = max_retries(record["http_status"])
            record.update(delivery=delivery, attempt=attempt)
            again = not record["delivered"] and attempt - 1 < retries
            wait = RETRY_MINUTES[attempt - 1] * 60 * self.retry_scale if again else None
            record["next_retry_in"] = wait
            if not self.store.record_attempt(order_id, generation, record):
                return False
            outcome = record["http_status"] or str(record["error"]).split(":", 1)[0]
            self.log(f"notify {order_id} {payload.get('transaction_status')} #{delivery}.{attempt} -> {outcome}")
            if not again or wait is None:
                return True
            if self.stop.wait(wait) or self.store.generation != generation:
                return False

    def _attempt(self, payload: dict[str, Any], url: str) -> dict[str, Any]:
        """POST once (following 307/308 like Midtrans) and describe the outcome."""
        record: dict[str, Any] = {
            "at": now().isoformat(), "url": url, "requested_url": url, "http_status": None, "error": None,
            "response_body": "", "delivered": False,
            "transaction_status": payload.get("transaction_status"),
            "status_code": payload.get("status_code"), "payload": payload,
        }
        try:
            for _ in range(5):
                response = requests.post(
                    url, json=payload, timeout=self.timeout, allow_redirects=False,
                    headers={"User-Agent": "Veritrans", "Accept": "application/json"},
                )
                if response.status_code in (307, 308) and response.headers.get("Location"):
                    url = urljoin(url, response.headers["Location"])
                    continue
                break
            record["url"] = url
            record["http_status"] = response.status_code
            record["response_body"] = response.text[:BODY_LIMIT]
            record["delivered"] = 200 <= response.status_code < 300
        except requests.RequestException as exc:
            record["error"] = f"{type(exc).__name__}: {exc}"[:BODY_LIMIT]
        return record
