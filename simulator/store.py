"""Thread-safe in-memory state (optionally persisted to a JSON file)."""

from __future__ import annotations

import copy
import json
import os
import threading
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

DEFAULT_CONFIG: dict[str, Any] = {
    "status_latency_ms": 0,
    "error_rate": 0.0,
    "error_mode": "500",
    "notifications": True,
    # Buyer fee (Midtrans's fee imposition), whole rupiah added to gross_amount in notifications and status answers.
    "fee": 0,
}
ERROR_MODES = ("500", "503", "429", "timeout", "html502")


@dataclass
class Transaction:
    """One order_id at the simulator: its request, its current payment and what happened to it.

    ``channel`` is "snap" (created by Snap; a method is chosen later) or "core"
    (created by a Core API charge, its method fixed). ``earlier_payments``
    holds the payments made before the current one under the same order_id
    (a VA paid more than once), oldest first, for ``/status/b2b``.
    """

    order_id: str
    gross_amount: int
    token: str
    redirect_url: str
    created_at: str
    expires_at: str
    finish_url: str | None = None
    customer_details: dict[str, Any] = field(default_factory=dict)
    item_details: list[dict[str, Any]] = field(default_factory=list)
    enabled_payments: list[str] = field(default_factory=list)
    expiry: dict[str, Any] | None = None
    status: str | None = None
    payment_type: str | None = None
    fraud_status: str | None = None
    transaction_id: str | None = None
    transaction_time: str | None = None
    settlement_time: str | None = None
    page_expired: bool = False
    method: dict[str, Any] = field(default_factory=dict)
    refunds: list[dict[str, Any]] = field(default_factory=list)
    payloads: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    notifications: list[dict[str, Any]] = field(default_factory=list)
    deliveries: int = 0
    channel: str = "snap"
    # X-Override-Notification / X-Append-Notification of the creating request.
    notify_override: list[str] = field(default_factory=list)
    notify_append: list[str] = field(default_factory=list)
    earlier_tokens: list[str] = field(default_factory=list)
    earlier_payments: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Transaction:
        """Build from ``to_dict`` output, ignoring unknown keys (older state files)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


class DuplicateOrder(Exception):
    """The order_id is taken: a payment was already attempted on it."""


class Store:
    """All transactions and the runtime config, guarded by one re-entrant lock."""

    def __init__(self, state_file: str | None = None, config: dict[str, Any] | None = None) -> None:
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.state_file = Path(state_file) if state_file else None
        self.initial_config = {**DEFAULT_CONFIG, **(config or {})}
        self.config: dict[str, Any] = dict(self.initial_config)
        self.generation = 0
        self._orders: dict[str, Transaction] = {}
        self._tokens: dict[str, str] = {}
        self.load()

    def create(self, tx: Transaction) -> None:
        """Add a transaction, or replace one whose order_id has no payment attempt yet.

        Midtrans issues another Snap token for an order_id nobody has paid or
        tried to pay; from the first attempt on (a method chosen, a charge) the
        order_id is taken: DuplicateOrder. A replaced transaction's tokens keep
        opening the order, which now has the newest request's details.
        """
        with self.lock:
            existing = self._orders.get(tx.order_id)
            if existing is not None:
                if existing.status is not None:
                    raise DuplicateOrder(tx.order_id)
                tx.earlier_tokens = [*existing.earlier_tokens, existing.token]
                tx.history = existing.history
                tx.notifications = existing.notifications
                tx.deliveries = existing.deliveries
            self._orders[tx.order_id] = tx
            self._tokens[tx.token] = tx.order_id
            self.save()

    def get(self, order_id: str) -> Transaction | None:
        """Return the transaction of an order_id or of a transaction_id (Midtrans accepts either)."""
        with self.lock:
            tx = self._orders.get(order_id)
            if tx is None:
                tx = next((t for t in self._orders.values() if order_id == t.transaction_id
                           or any(p["transaction_id"] == order_id for p in t.earlier_payments)), None)
            return tx

    def by_token(self, token: str) -> Transaction | None:
        with self.lock:
            order_id = self._tokens.get(token)
            return self._orders.get(order_id) if order_id else None

    def all(self) -> list[Transaction]:
        """Return every transaction, newest first."""
        with self.lock:
            return sorted(self._orders.values(), key=lambda t: t.created_at, reverse=True)

    def reset(self) -> None:
        """Forget every transaction, restore the start-up config, cancel pending deliveries."""
        with self.lock:
            self._orders.clear()
            self._tokens.clear()
            self.config = dict(self.initial_config)
            self.generation += 1
            self.save()

    def update_config(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Validate and apply config changes (ValueError names the bad one); return the new config."""
        clean: dict[str, Any] = {}
        if "status_latency_ms" in changes:
            clean["status_latency_ms"] = max(0, int(changes["status_latency_ms"]))
        if "error_rate" in changes:
            rate = float(changes["error_rate"])
            if not 0.0 <= rate <= 1.0:
                raise ValueError("error_rate must be between 0 and 1")
            clean["error_rate"] = rate
        if "error_mode" in changes:
            mode = str(changes["error_mode"])
            if mode not in ERROR_MODES:
                raise ValueError(f"error_mode must be one of {', '.join(ERROR_MODES)}")
            clean["error_mode"] = mode
        if "fee" in changes:
            fee = int(changes["fee"])
            if fee < 0:
                raise ValueError("fee must not be negative")
            clean["fee"] = fee
        if "notifications" in changes:
            value = changes["notifications"]
            if isinstance(value, str):
                value = value.lower() in ("1", "true", "on", "yes")
            clean["notifications"] = bool(value)
        with self.lock:
            self.config.update(clean)
            self.save()
            return dict(self.config)

    def record_attempt(self, order_id: str, generation: int, record: dict[str, Any]) -> bool:
        """Append a delivery attempt; False when the store was reset since (stop delivering)."""
        with self.lock:
            tx = self._orders.get(order_id)
            if generation != self.generation or tx is None:
                return False
            tx.notifications.append(record)
            self.save()
            self.changed.notify_all()
            return True

    def wait_attempts(self, order_id: str, count: int, timeout: float) -> None:
        """Wait (bounded) until an order has at least count recorded delivery attempts."""
        with self.changed:
            self.changed.wait_for(
                lambda: len(getattr(self._orders.get(order_id), "notifications", [])) >= count, timeout)

    def save(self) -> None:
        """Write the state file, if one is configured; replaced atomically so a crash never leaves half."""
        if self.state_file is None:
            return
        with self.lock:
            data = {
                "config": self.config,
                "orders": [t.to_dict() for t in self._orders.values()],
            }
            tmp = self.state_file.with_suffix(self.state_file.suffix + ".tmp")
            tmp.write_text(json.dumps(data, indent=1))
            os.replace(tmp, self.state_file)

    def load(self) -> None:
        if self.state_file is None or not self.state_file.exists():
            return
        data = json.loads(self.state_file.read_text() or "{}")
        with self.lock:
            self.config.update(data.get("config", {}))
            for raw in data.get("orders", []):
                tx = Transaction.from_dict(raw)
                self._orders[tx.order_id] = tx
                for token in (*tx.earlier_tokens, tx.token):
                    self._tokens[token] = tx.order_id
