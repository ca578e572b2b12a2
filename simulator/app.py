"""The simulator's behaviour, independent of HTTP: create, move, notify, expire."""

from __future__ import annotations

import copy
import random
import re
import threading
import time
import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from simulator import charge as core_charge
from simulator import engine
from simulator.notifier import Notifier
from simulator.payloads import action_body, now, status_code_for, transaction_body
from simulator.store import DuplicateOrder, Store, Transaction

ORDER_ID_RE = re.compile(r"^[A-Za-z0-9\-_~.]+$")
EXPIRY_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
DEFAULT_EXPIRY = timedelta(hours=24)
MAX_NOTIFICATION_URLS = 3  # per header, as Midtrans documents
INVALID_JSON = object()  # a request body that is not JSON (a missing or ``null`` body is None)


class SnapError(Exception):
    """A Snap request Midtrans would refuse: HTTP status and error_messages."""

    def __init__(self, status: int, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.status = status
        self.messages = messages


class UnknownOrder(Exception):
    pass


def parse_notify(mode: str | None) -> tuple[str, float]:
    """Parse a control-API notify mode: send|drop|duplicate|reorder|delay:<seconds>."""
    mode = (mode or "send").strip().lower()
    if mode.startswith("delay:"):
        try:
            seconds = float(mode.split(":", 1)[1])
        except ValueError:
            raise engine.BadRequest(f"bad notify mode {mode!r}") from None
        if seconds < 0:
            raise engine.BadRequest("delay must not be negative")
        return "delay", seconds
    if mode not in ("send", "drop", "duplicate", "reorder"):
        raise engine.BadRequest(f"bad notify mode {mode!r}; use send|drop|duplicate|reorder|delay:<seconds>")
    return mode, 0.0


def _amount(value: Any) -> int | None:
    """Return an integral amount (int, integral float or digit string; negative allowed), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"-?\d+(\.0+)?", value.strip()):
        return int(float(value))
    return None


def parse_notification_urls(value: str | None) -> list[str]:
    """Split an X-Override-Notification / X-Append-Notification value: comma-separated http(s) URLs, at most 3.

    URLs past the third, and values that are not http(s) URLs, are dropped
    (Midtrans documents the limit, not what it does beyond it).
    """
    urls = [u.strip() for u in (value or "").split(",")]
    return [u for u in urls if u.startswith(("http://", "https://"))][:MAX_NOTIFICATION_URLS]


def details_errors(body: Any, min_amount: str = "0.01") -> tuple[str, int, list[str]]:
    """Check transaction_details and item_details as Midtrans does; return (order_id, gross_amount, messages).

    A missing or null body, or one without transaction_details, gets only
    "transaction_details is required": Midtrans names what is required, not
    a JSON parse error. Zero and negative amounts get Midtrans's
    "must be greater than or equal to <min_amount>".
    """
    if body is INVALID_JSON:
        return "", 0, ["Request body is not valid JSON"]
    details = body.get("transaction_details") if isinstance(body, dict) else None
    if not isinstance(details, dict):
        return "", 0, ["transaction_details is required"]
    errors: list[str] = []
    order_id = details.get("order_id")
    if order_id in (None, ""):
        errors.append("transaction_details.order_id is required")
    elif not isinstance(order_id, str) or not ORDER_ID_RE.match(order_id):
        errors.append("transaction_details.order_id may only contain alpha-numeric, dash(-), "
                      "underscore(_), tilde (~), and dot (.)")
    elif len(order_id) > 50:
        errors.append("transaction_details.order_id too long. Max 50 characters.")
    raw_gross = details.get("gross_amount")
    gross = _amount(raw_gross)
    if raw_gross is None:
        errors.append("transaction_details.gross_amount is required")
    elif gross is None:
        errors.append("transaction_details.gross_amount must be an integer")
    elif gross <= 0:
        errors.append(f"transaction_details.gross_amount must be greater than or equal to {min_amount}")
    items = body.get("item_details")
    if items is not None:
        if not isinstance(items, list):
            errors.append("item_details must be an array")
        else:
            total = 0
            for i, item in enumerate(items):
                price = _amount(item.get("price")) if isinstance(item, dict) else None
                qty = _amount(item.get("quantity")) if isinstance(item, dict) else None
                if price is None or qty is None:
                    errors.append(f"item_details[{i}] needs an integer price and quantity")
                else:
                    total += price * qty
            if gross is not None and not errors and total != gross:
                errors.append("transaction_details.gross_amount is not equal to the sum of item_details")
    return str(order_id or ""), int(gross or 0), errors


def validate_snap(body: Any) -> tuple[str, int]:
    """Validate a Snap request like Midtrans; return (order_id, gross_amount) or raise SnapError(400)."""
    order_id, gross, errors = details_errors(body)
    if errors:
        raise SnapError(400, errors)
    return order_id, gross


def _expiry_deadline(expiry: Any, created: datetime) -> datetime:
    """Return when the Snap transaction expires, from Snap's ``expiry`` object (SnapError when it is malformed)."""
    if not isinstance(expiry, dict):
        return created + DEFAULT_EXPIRY
    start = created
    if expiry.get("start_time"):
        try:
            start = datetime.strptime(str(expiry["start_time"]), "%Y-%m-%d %H:%M:%S %z")
        except ValueError:
            raise SnapError(400, ["expiry.start_time must be formatted as yyyy-MM-dd HH:mm:ss Z"]) from None
    unit = str(expiry.get("unit", "minute")).lower().rstrip("s")
    if unit not in EXPIRY_UNITS:
        raise SnapError(400, ["expiry.unit must be one of second, minute, hour, day"])
    try:
        duration = int(expiry.get("duration", 0))
    except (TypeError, ValueError):
        raise SnapError(400, ["expiry.duration must be an integer"]) from None
    if duration <= 0:
        raise SnapError(400, ["expiry.duration must be greater than 0"])
    return start + timedelta(seconds=duration * EXPIRY_UNITS[unit])


def finish_redirect(tx: Transaction) -> str | None:
    """Return callbacks.finish with Snap's query (order_id, status_code, transaction_status)."""
    if not tx.finish_url or tx.status is None:
        return None
    query = urlencode({
        "order_id": tx.order_id,
        "status_code": status_code_for(tx.status, tx.fraud_status),
        "transaction_status": tx.status,
    })
    return tx.finish_url + ("&" if "?" in tx.finish_url else "?") + query


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
        expires = _expiry_deadline(body.get("expiry"), created)
        token = str(uuid.uuid4())
        base = self.public_url or base_url.rstrip("/")
        callbacks = body.get("callbacks") if isinstance(body.get("callbacks"), dict) else {}
        tx = Transaction(
            order_id=order_id, gross_amount=gross, token=token,
            redirect_url=f"{base}/snap/v2/vtweb/{token}",
            created_at=created.isoformat(), expires_at=expires.isoformat(),
            finish_url=callbacks.get("finish") or None,
            customer_details=body.get("customer_details") or {},
            item_details=body.get("item_details") or [],
            enabled_payments=[str(p) for p in body.get("enabled_payments") or []],
            expiry=body.get("expiry") if isinstance(body.get("expiry"), dict) else None,
            notify_override=list(override or []), notify_append=[] if override else list(append or []),
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
        token = str(uuid.uuid4())
        base = self.public_url or base_url.rstrip("/")
        tx = Transaction(
            order_id=order_id, gross_amount=gross, token=token, redirect_url=f"{base}/snap/v2/vtweb/{token}",
            created_at=created.isoformat(), expires_at=((request.start or created) + request.expires_in).isoformat(),
            customer_details=request.customer_details, item_details=request.item_details, channel="core",
            notify_override=list(override or []), notify_append=[] if override else list(append or []),
        )
        with self.store.lock:
            try:
                self.store.create(tx)
            except DuplicateOrder:
                raise core_charge.taken() from None
            outcome = request.card_outcome
            if request.payment_type != "credit_card":
                action, params = "pending", {"payment_type": request.payment_type, "bank": request.bank}
            elif request.authentication:
                action, params = "pending", {"payment_type": "credit_card"}
            else:
                action = {"accept": "settle", "challenge": "challenge"}.get(outcome, "deny")
                params = {"payment_type": "credit_card"}
            engine.apply(tx, action, **params)
            if tx.payment_type == "credit_card":
                tx.method["masked_card"] = request.card
                if outcome == "deny_fds" and tx.status == "deny":
                    tx.fraud_status = "deny"
            dispatch = self._record(tx, action, "core_api", "send")
            answer = core_charge.charge_answer(tx, self.status_body(tx), base, outcome)
        self._dispatch(tx, *dispatch)
        return answer

    # -- moves --------------------------------------------------------------------
    def act(self, order_id: str, action: str, *, notify: str | None = "send", strict: bool = False,
            source: str = "control", **params: Any) -> tuple[Transaction, dict[str, Any] | None]:
        """Apply a move, record its payload and send it as the notify mode says."""
        parse_notify(notify)  # refuse a bad mode before anything moves
        with self.store.lock:
            tx = self.store.get(order_id)
            if tx is None:
                raise UnknownOrder(order_id)
            refund = engine.apply(tx, action, strict=strict, **params)
            if refund is not None and refund.get("duplicate"):  # a refund_key seen before: nothing happens
                tx.history.append({"at": now().isoformat(), "action": action, "source": source,
                                   "transaction_status": tx.status, "notify": "none (refund_key seen before)"})
                self.store.save()
                return tx, refund
            if tx.status is None:  # Snap page expiry without a method: nothing to send
                tx.history.append({"at": now().isoformat(), "action": action, "source": source,
                                   "transaction_status": None, "notify": "none"})
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
        mode, delay = parse_notify(notify)
        payload = transaction_body(tx, self.server_key, self.merchant_id, fee=self.fee())
        previous = tx.payloads[-1] if tx.payloads else None
        tx.payloads.append(payload)
        enabled = bool(self.store.config.get("notifications", True))
        tx.history.append({"at": now().isoformat(), "action": action, "source": source,
                           "transaction_status": tx.status, "fraud_status": tx.fraud_status,
                           "notify": (notify or "send") if enabled else "off"})
        self.store.save()
        return (self._plan(mode, payload, previous) if enabled else []), delay

    def _dispatch(self, tx: Transaction, payloads: list[dict[str, Any]], delay: float) -> None:
        self.notifier.dispatch(tx.order_id, payloads, delay, urls=self.notification_urls(tx))

    def notification_urls(self, tx: Transaction) -> list[str]:
        """Where this transaction's notifications go: the override, or the configured URL plus the appended."""
        if tx.notify_override:
            return list(tx.notify_override)
        return [self.notify_url, *tx.notify_append]

    @staticmethod
    def _plan(mode: str, payload: dict[str, Any], previous: dict[str, Any] | None) -> list[dict[str, Any]]:
        """Return the payloads to deliver, in order, for a notify mode."""
        if mode == "drop":
            return []
        if mode == "duplicate":
            return [payload, payload]
        if mode == "reorder" and previous is not None:
            return [payload, previous]
        return [payload]

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
