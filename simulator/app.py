"""The simulator's behaviour, independent of HTTP: create, move, notify, expire."""

from __future__ import annotations

import copy
import random
import threading
import time
import uuid
from dataclasses import replace
from datetime import datetime
from typing import Any

from simulator import charge as core_charge
from simulator import engine
from simulator.notifier import Notifier, notify_mode, to_deliver
from simulator.payloads import action_body, now, status_code_for, transaction_body
from simulator.snap import INVALID_JSON, SnapError, details_errors, expiry_deadline, finish_redirect, validate_snap
from simulator.store import DuplicateOrder, Store, Transaction


class UnknownOrder(Exception):
    """No transaction has that order id or transaction id."""


class Simulator:
    """The store, the notifier and the expiry sweeper, and every move that combines them."""

    def __init__(self, *, server_key: str, notify_url: str, retry_scale: float = 1.0,
                 state_file: str | None = None, public_url: str | None = None,
                 merchant_id: str = "G000000000") -> None:
        self.server_key = server_key
        self.notify_url = notify_url
        self.public_url = public_url.rstrip("/") if public_url else None
        self.merchant_id = merchant_id
        self.stop = threading.Event()
        self.store = Store(state_file)
        self.notifier = Notifier(self.store, notify_url, retry_scale, self.stop)

    # -- creation -----------------------------------------------------------------
    def create_transaction(self, body: Any, base_url: str, *, override: list[str] | None = None,
                           append: list[str] | None = None) -> Transaction:
        """Validate a Snap request and store its transaction.

        An order_id with no payment attempt yet gets a new token (the newest
        request's details apply); once a payment was attempted it is refused
        with Midtrans's 400 "transaction_details.order_id has already been taken".
        ``override``/``append`` are the request's notification URL headers.
        """
        order_id, gross = validate_snap(body)
        created = now()
        callbacks = body.get("callbacks") if isinstance(body.get("callbacks"), dict) else {}
        tx = self._new_transaction(
            base_url, created, expiry_deadline(body.get("expiry"), created), override, append,
            order_id=order_id, gross_amount=gross,
            finish_url=callbacks.get("finish") or None,
            customer_details=body.get("customer_details") or {},
            item_details=body.get("item_details") or [],
            enabled_payments=[str(p) for p in body.get("enabled_payments") or []],
            expiry=body.get("expiry") if isinstance(body.get("expiry"), dict) else None,
        )
        try:
            self.store.create(tx)
        except DuplicateOrder:
            raise SnapError(400, ["transaction_details.order_id has already been taken"]) from None
        return tx

    def charge(self, body: Any, base_url: str, *, override: list[str] | None = None,
               append: list[str] | None = None) -> dict[str, Any]:
        """Run a Core API charge and return Midtrans's answer; raise charge.ChargeError when it refuses.

        The transaction is created and moved (pending, or for a card captured,
        challenged or denied) in one step under the store lock, so no other
        request sees it without its payment; its notification goes out as for
        any move.
        """
        payment_type = body.get("payment_type") if isinstance(body, dict) else None
        order_id, gross, errors = details_errors(
            body, "1" if payment_type in ("bank_transfer", "echannel") else "0.01")
        if body is INVALID_JSON or not isinstance(body, dict):
            raise core_charge.invalid(*errors)
        request = core_charge.validate_charge(body, errors, order_id, gross)
        created = now()
        tx = self._new_transaction(
            base_url, created, (request.start or created) + request.expires_in, override, append,
            order_id=order_id, gross_amount=gross, channel="core",
            customer_details=request.customer_details, item_details=request.item_details,
        )
        with self.store.lock:
            try:
                self.store.create(tx)
            except DuplicateOrder:
                raise core_charge.taken() from None
            action, params = request.first_move()
            engine.apply(tx, action, **params)
            if tx.payment_type == "credit_card":
                tx.method["masked_card"] = request.card
                if request.card_outcome == "deny_fds" and tx.status == "deny":
                    tx.fraud_status = "deny"
            dispatch = self._record(tx, action, "core_api", "send")
            answer = core_charge.charge_answer(tx, self.status_body(tx), self._base(base_url), request.card_outcome)
        self._dispatch(tx, *dispatch)
        return answer

    def _base(self, base_url: str) -> str:
        return self.public_url or base_url.rstrip("/")

    def _new_transaction(self, base_url: str, created: datetime, expires: datetime, override: list[str] | None,
                         append: list[str] | None, **fields: Any) -> Transaction:
        """Return a transaction with a new token and payment page; its notifications go where the headers say.

        X-Override-Notification replaces the configured URL and X-Append-Notification
        adds to it; given both, the override wins.
        """
        token = str(uuid.uuid4())
        return Transaction(token=token, redirect_url=f"{self._base(base_url)}/snap/v2/vtweb/{token}",
                           created_at=created.isoformat(), expires_at=expires.isoformat(),
                           notify_override=list(override or []), notify_append=[] if override else list(append or []),
                           **fields)

    # -- moves --------------------------------------------------------------------
    def act(self, order_id: str, action: str, *, notify: str | None = "send", strict: bool = False,
            source: str = "control", **params: Any) -> tuple[Transaction, dict[str, Any] | None]:
        """Apply a move, record its payload and send it as the notify mode says."""
        notify_mode(notify)  # refuse a bad mode before anything moves
        with self.store.lock:
            tx = self.store.get(order_id)
            if tx is None:
                raise UnknownOrder(order_id)
            refund = engine.apply(tx, action, strict=strict, **params)
            # Nothing to send: a refund_key seen before changes nothing; a Snap page expired without a method.
            silent = "none (refund_key seen before)" if refund is not None and refund.get("duplicate") else (
                "none" if tx.status is None else "")
            if silent:
                tx.history.append({"at": now().isoformat(), "action": action, "source": source,
                                   "transaction_status": tx.status, "notify": silent})
                self.store.save()
                return tx, refund
            dispatch = self._record(tx, action, source, notify)
        self._dispatch(tx, *dispatch)
        return tx, refund

    def merchant_action(self, order_id: str, action: str, **params: Any) -> dict[str, Any]:
        """Apply a Core API cancel, expire, refund, approve or deny by order or transaction id; return the answer."""
        tx, refund = self.act(order_id, action, strict=True, source="core_api", **params)
        with self.store.lock:
            return action_body(tx, action, self.server_key, self.merchant_id, refund, fee=self.fee())

    def pay_by_card(self, order_id: str, result: str) -> None:
        """Apply the payment page's card form: ``challenge``, ``deny``, or anything else to accept.

        Accepting or denying needs a pending card attempt, so one is started
        first when there is none, without a notification: the customer only
        sees the outcome (and a settle on its own would pick a VA).
        """
        if result == "challenge":
            self.act(order_id, "challenge", source="page")
            return
        with self.store.lock:
            tx = self.store.get(order_id)
            if tx is not None and (tx.payment_type != "credit_card" or tx.status != "pending"):
                self.act(order_id, "pending", notify="drop", source="page", payment_type="credit_card")
        self.act(order_id, "deny" if result == "deny" else "settle", source="page")

    def _record(self, tx: Transaction, action: str, source: str,
                notify: str | None) -> tuple[list[dict[str, Any]], float]:
        """Store a move's payload and history line (under the lock); return what to deliver and after what delay."""
        mode, delay = notify_mode(notify)
        payload = transaction_body(tx, self.server_key, self.merchant_id, fee=self.fee())
        previous = tx.payloads[-1] if tx.payloads else None
        tx.payloads.append(payload)
        enabled = bool(self.store.config.get("notifications", True))
        tx.history.append({"at": now().isoformat(), "action": action, "source": source,
                           "transaction_status": tx.status, "fraud_status": tx.fraud_status,
                           "notify": (notify or "send") if enabled else "off"})
        self.store.save()
        return (to_deliver(mode, payload, previous) if enabled else []), delay

    def _dispatch(self, tx: Transaction, payloads: list[dict[str, Any]], delay: float) -> None:
        self.notifier.dispatch(tx.order_id, payloads, delay, urls=self.notification_urls(tx))

    def notification_urls(self, tx: Transaction) -> list[str]:
        """Where this transaction's notifications go: the override, or the configured URL plus the appended."""
        if tx.notify_override:
            return list(tx.notify_override)
        return [self.notify_url, *tx.notify_append]

    # -- answers to the API, views of a transaction ------------------------------------
    def injected_fault(self) -> str | None:
        """Return the configured error_mode when the configured error_rate makes this API call fail, else None."""
        config = dict(self.store.config)
        if config["error_rate"] and random.random() < config["error_rate"]:
            return str(config["error_mode"])
        return None

    def known_payment(self, order_id: str) -> Transaction | None:
        """Return the transaction of an order or transaction id once it has a payment (Midtrans knows it), else None."""
        tx = self.store.get(order_id)
        return None if tx is None or tx.status is None else tx

    def status(self, order_id: str) -> dict[str, Any] | None:
        """Answer GET status after the configured latency; None when Midtrans would not know the id."""
        latency = int(self.store.config.get("status_latency_ms") or 0)
        if latency:
            time.sleep(latency / 1000)
        tx = self.known_payment(order_id)
        return None if tx is None else self.status_body(tx)

    def page_view(self, token: str) -> Transaction | None:
        """Return a copy of the token's transaction, taken under the lock, for the payment page to show."""
        with self.store.lock:
            tx = self.store.by_token(token)
            return copy.deepcopy(tx)

    def status_body(self, tx: Transaction) -> dict[str, Any]:
        """Return the Core API GET status body (of the newest payment under the order_id)."""
        with self.store.lock:
            return transaction_body(tx, self.server_key, self.merchant_id, "Success, transaction is found",
                                    fee=self.fee())

    def b2b_body(self, tx: Transaction, page: int = 0, per_page: int | None = None) -> dict[str, Any]:
        """Return GET status/b2b: every payment under the order_id, newest first, paged like Midtrans."""
        with self.store.lock:
            bodies = [self.status_body(tx)]
            for earlier in reversed(tx.earlier_payments):
                past = replace(tx, transaction_id=earlier["transaction_id"],
                               transaction_time=earlier["transaction_time"], settlement_time=earlier["settlement_time"],
                               status=earlier["status"], fraud_status=earlier["fraud_status"],
                               payment_type=earlier["payment_type"], method=earlier["method"],
                               refunds=earlier["refunds"])
                bodies.append(self.status_body(past))
        if per_page:
            bodies = bodies[page * per_page:(page + 1) * per_page]
        return {"status_code": "200", "status_message": "Success, transactions are retrieved",
                "transactions": bodies}

    def fee(self) -> int:
        """Return the buyer fee the config imposes (0: none)."""
        return int(self.store.config.get("fee") or 0)

    def tx_json(self, tx: Transaction) -> dict[str, Any]:
        """Return the control API's JSON view of a transaction."""
        with self.store.lock:
            data = tx.to_dict()
            data["transactions"] = [
                {"transaction_id": t["transaction_id"], "transaction_status": t["transaction_status"],
                 "settlement_time": t.get("settlement_time")}
                for t in self.b2b_body(tx)["transactions"]] if tx.status else []
        data["notification_urls"] = self.notification_urls(tx)
        data.pop("payloads")
        data["status_code"] = status_code_for(tx.status, tx.fraud_status) if tx.status else None
        data["finish_redirect_url"] = finish_redirect(tx)
        data["refunded_amount"] = sum(r["amount"] for r in tx.refunds)
        data["last_payload"] = tx.payloads[-1] if tx.payloads else None
        for key, value in tx.method.items():
            data.setdefault(key, value)
        if tx.payment_type == "bank_transfer" and tx.method.get("bank") != "permata":
            data["va_numbers"] = [{"bank": tx.method.get("bank"), "va_number": tx.method.get("va_number")}]
        if tx.method.get("bank") == "permata":
            data["permata_va_number"] = tx.method.get("va_number")
        last = tx.notifications[-1] if tx.notifications else None
        data["last_notification"] = None if last is None else (last.get("http_status") or last.get("error"))
        return data

    # -- expiry ---------------------------------------------------------------------
    def sweep(self) -> int:
        """Expire pending transactions past their deadline (a Snap page without a method silently); return how many."""
        moved = 0
        current = now()
        for tx in self.store.all():
            if datetime.fromisoformat(tx.expires_at) > current:
                continue
            if tx.status == "pending" or (tx.status is None and not tx.page_expired):
                try:
                    self.act(tx.order_id, "expire", source="sweeper")
                    moved += 1
                except (engine.NotAllowed, UnknownOrder):
                    pass
        return moved

    def start_sweeper(self, interval: float = 1.0) -> threading.Thread:
        def loop() -> None:
            while not self.stop.wait(interval):
                self.sweep()
        thread = threading.Thread(target=loop, name="expiry-sweeper", daemon=True)
        thread.start()
        return thread
