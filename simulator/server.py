"""HTTP routing: Snap/Core API, payment page, control API and dashboard."""

from __future__ import annotations

import base64
import binascii
import json
import random
import re
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from simulator import ACTIONS, pages
from simulator.app import INVALID_JSON, Simulator, SnapError, UnknownOrder, parse_notification_urls
from simulator.charge import ChargeError, card_token, qr_png
from simulator.engine import BadRequest, NotAllowed, NotFound
from simulator.payloads import action_body, cannot_modify_body, not_found_body

ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("GET", re.compile(r"^/healthz/?$"), "healthz"),
    ("GET", re.compile(r"^/$"), "dashboard"),
    ("POST", re.compile(r"^/snap/v1/transactions/?$"), "snap_create"),
    ("POST", re.compile(r"^/v2/charge/?$"), "core_charge"),
    ("GET", re.compile(r"^/v2/token/?$"), "core_token"),
    ("GET", re.compile(r"^/v2/(?P<kind>gopay|qris)/(?P<id>[^/]+)/qr-code/?$"), "qr_code"),
    ("GET", re.compile(r"^/v2/gopay/(?P<id>[^/]+)/deeplink/?$"), "gopay_deeplink"),
    ("GET", re.compile(r"^/v2/(?P<id>.+)/status/b2b/?$"), "core_status_b2b"),
    ("GET", re.compile(r"^/v2/(?P<id>.+)/status/?$"), "core_status"),
    ("POST", re.compile(r"^/v2/(?P<id>.+)/(?P<action>cancel|expire|refund|approve|deny)/?$"), "core_action"),
    ("GET", re.compile(r"^/snap/v2/vtweb/(?P<token>[^/]+)/?$"), "page"),
    ("POST", re.compile(r"^/snap/v2/vtweb/(?P<token>[^/]+)/(?P<step>choose|pay|card)/?$"), "page_post"),
    ("GET", re.compile(r"^/sim/config/?$"), "config_get"),
    ("POST", re.compile(r"^/sim/config/?$"), "config_post"),
    ("POST", re.compile(r"^/sim/reset/?$"), "reset"),
    ("GET", re.compile(r"^/sim/orders/?$"), "orders_list"),
    ("GET", re.compile(r"^/sim/orders/(?P<id>.+?)/?$"), "order_get"),
    ("POST", re.compile(rf"^/sim/orders/(?P<id>.+)/(?P<action>{'|'.join(ACTIONS)})/?$"), "order_action"),
]
SNAP_UNAUTHORIZED = {"error_messages": [
    "Access denied due to unauthorized transaction, please check client or server key",
    "Visit https://snap-docs.midtrans.com/#request-headers for more details",
]}
CORE_UNAUTHORIZED = {
    "status_code": "401",
    "status_message": "Transaction cannot be authorized with the current client/server key.",
}
HTML_502 = (b"<html><head><title>502 Bad Gateway</title></head><body>"
            b"<center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>")


class SimulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sim: Simulator) -> None:
        super().__init__(address, Handler)
        self.sim = sim


class Handler(BaseHTTPRequestHandler):
    """Route one request to the method ROUTES names; path parameters arrive URL-decoded."""

    server: SimulatorServer
    protocol_version = "HTTP/1.1"
    server_version = "MidtransSimulator/1.0"

    # -- plumbing -------------------------------------------------------------------
    @property
    def sim(self) -> Simulator:
        return self.server.sim

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        sys.stderr.write(f"{self.log_date_time_string()} {format % args}\n")

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self.log_message("%s %s %s", self.command, self.path, code)

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        """Call the matching route's handler; answer 404 (no route) or 405 (route, other method)."""
        parts = urlsplit(self.path)
        self.query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self._body: bytes | None = None
        path_allowed = False
        for verb, pattern, name in ROUTES:
            match = pattern.match(parts.path)
            if not match:
                continue
            path_allowed = True
            if verb != method:
                continue
            params = {k: unquote(v) for k, v in match.groupdict().items()}
            try:
                getattr(self, name)(**params)
            except (BrokenPipeError, ConnectionResetError):
                pass
            return
        self._read_body()
        if path_allowed:
            self._json(405, {"status_code": "405", "status_message": "Method not allowed"})
        else:
            self._json(404, {"status_code": "404", "status_message": "Not found"})

    def _read_body(self) -> bytes:
        # Always drained before answering, so a kept-alive connection stays in step.
        if self._body is None:
            length = int(self.headers.get("Content-Length") or 0)
            self._body = self.rfile.read(length) if length else b""
        return self._body

    def _data(self) -> dict[str, Any]:
        """Parse a JSON or form body into a dict (empty when absent or invalid)."""
        raw = self._read_body()
        if not raw:
            return {}
        if "application/x-www-form-urlencoded" in (self.headers.get("Content-Type") or ""):
            return {k: v[-1] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
        try:
            data = json.loads(raw)
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    def _json_body(self) -> Any:
        """Return the parsed JSON body: None when it is missing or ``null``, INVALID_JSON when it cannot be parsed."""
        raw = self._read_body()
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return INVALID_JSON

    def _notification_headers(self) -> dict[str, list[str]]:
        """Return X-Override-Notification / X-Append-Notification as ``override``/``append`` URL lists."""
        return {"override": parse_notification_urls(self.headers.get("X-Override-Notification")),
                "append": parse_notification_urls(self.headers.get("X-Append-Notification"))}

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self._read_body()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data: Any) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def _html(self, status: int, text: str) -> None:
        self._send(status, text.encode(), "text/html; charset=utf-8")

    def _redirect(self, location: str, status: int = 303) -> None:
        self._send(status, b"", "text/plain", {"Location": location})

    def _authorized(self) -> bool:
        """Check Basic auth: the server key as user name, any password."""
        header = self.headers.get("Authorization") or ""
        if not header.startswith("Basic "):
            return False
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        key, _, _ = decoded.partition(":")
        return key == self.sim.server_key

    def _api_guard(self, snap: bool) -> bool:
        """Apply auth and injected faults to a Snap/Core call; True when already answered."""
        if not self._authorized():
            self._json(401, SNAP_UNAUTHORIZED if snap else {**CORE_UNAUTHORIZED, "id": "-"})
            return True
        config = dict(self.sim.store.config)
        if config["error_rate"] and random.random() < config["error_rate"]:
            self._fault(config["error_mode"], snap)
            return True
        return False

    def _fault(self, mode: str, snap: bool) -> None:
        """Answer with an injected failure, in Snap's or the Core API's error shape."""
        if mode == "timeout":
            self._read_body()
            self.sim.stop.wait(30)
            self.close_connection = True
            return
        if mode == "html502":
            self._send(502, HTML_502, "text/html")
            return
        status = int(mode)
        message = {
            500: "Sorry. Our system is recovering from unexpected issues. Please retry.",
            503: "Service is temporarily unavailable. Please retry.",
            429: "Too many requests. Please retry later.",
        }[status]
        self._json(status, {"error_messages": [message]} if snap
                   else {"status_code": str(status), "status_message": message})

    def _base_url(self) -> str:
        """Return the base URL the client used (its Host header): redirect_url and actions point there."""
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        return f"http://{host}"

    # -- Snap and Core API ------------------------------------------------------------
    def healthz(self) -> None:
        self._json(200, {"ok": True})

    def snap_create(self) -> None:
        if self._api_guard(snap=True):
            return
        try:
            tx = self.sim.create_transaction(self._json_body(), self._base_url(), **self._notification_headers())
        except SnapError as exc:
            self._json(exc.status, {"error_messages": exc.messages})
            return
        self._json(201, {"token": tx.token, "redirect_url": tx.redirect_url})

    def core_charge(self) -> None:
        """POST /v2/charge: HTTP 200 with the body's own status_code (201 pending, 200 capture, 202 deny)."""
        if self._api_guard(snap=False):
            return
        try:
            answer = self.sim.charge(self._json_body(), self._base_url(), **self._notification_headers())
        except ChargeError as exc:
            self._json(exc.status, exc.body)
            return
        self._json(200, answer)

    def core_token(self) -> None:
        """GET /v2/token: Midtrans takes the client key as a query parameter; midtransclient sends the server key."""
        if not self.query.get("client_key") and not self._authorized():
            self._json(401, {**CORE_UNAUTHORIZED, "id": "-"})
            return
        try:
            self._json(200, card_token(self.query))
        except ChargeError as exc:
            self._json(exc.status, exc.body)

    def qr_code(self, kind: str, id: str) -> None:  # noqa: A002 - route parameter
        """The generate-qr-code action: a PNG, no auth (Midtrans's URL is meant for a browser or a POS)."""
        tx = self.sim.store.get(id)
        if tx is None or tx.payment_type != kind:
            self._json(404, not_found_body())
            return
        self._send(200, qr_png(f"{tx.transaction_id}:{tx.gross_amount}"), "image/png")

    def gopay_deeplink(self, id: str) -> None:  # noqa: A002 - route parameter
        """The deeplink-redirect action: Midtrans opens the Gojek app; here the payment page stands in for it."""
        tx = self.sim.store.get(id)
        if tx is None or tx.payment_type != "gopay":
            self._json(404, not_found_body())
            return
        self._redirect(f"/snap/v2/vtweb/{tx.token}", status=302)

    def core_status(self, id: str) -> None:  # noqa: A002 - route parameter
        if self._api_guard(snap=False):
            return
        latency = int(self.sim.store.config.get("status_latency_ms") or 0)
        if latency:
            time.sleep(latency / 1000)
        tx = self.sim.store.get(id)
        if tx is None or tx.status is None:
            self._json(404, not_found_body())
            return
        with self.sim.store.lock:
            body = self.sim.status_body(tx)
        self._json(200, body)

    def core_status_b2b(self, id: str) -> None:  # noqa: A002 - route parameter
        """GET /v2/<id>/status/b2b[?page=P&per_page=N]: every payment under the order id, newest first."""
        if self._api_guard(snap=False):
            return
        tx = self.sim.store.get(id)
        if tx is None or tx.status is None:
            self._json(404, not_found_body())
            return
        try:
            page = max(0, int(self.query.get("page") or 0))
            per_page = max(0, int(self.query.get("per_page") or 0)) or None
        except ValueError:
            self._json(400, {"status_code": "400", "status_message": "page and per_page must be integers"})
            return
        with self.sim.store.lock:
            body = self.sim.b2b_body(tx, page, per_page)
        self._json(200, body)

    def core_action(self, id: str, action: str) -> None:  # noqa: A002 - route parameter
        """POST /v2/<id>/cancel|expire|refund|approve|deny: 404 unknown, 412 not allowed in this status."""
        if self._api_guard(snap=False):
            return
        params: dict[str, Any] = {}
        if action == "refund":
            data = self._data()
            amount = data.get("amount")
            params = {"reason": str(data.get("reason") or ""), "refund_key": str(data.get("refund_key") or "")}
            if amount is not None:
                try:
                    params["amount"] = int(float(amount))
                except (TypeError, ValueError):
                    self._json(400, {"status_code": "400", "status_message": "amount must be a number"})
                    return
        try:
            tx, refund = self.sim.act(id, action, strict=True, source="core_api", **params)
        except (UnknownOrder, NotFound):
            self._json(404, not_found_body())
            return
        except NotAllowed as exc:
            body = cannot_modify_body()
            if action == "refund" and "amount" in str(exc):
                body["status_message"] = f"Refund amount is invalid: {exc}"
            self._json(412, body)
            return
        with self.sim.store.lock:
            body = action_body(tx, action, self.sim.server_key, self.sim.merchant_id, refund, fee=self.sim.fee())
        self._json(200, body)

    # -- payment page ---------------------------------------------------------------------
    def page(self, token: str) -> None:
        tx = self.sim.store.by_token(token)
        if tx is None:
            self._html(404, "<h1>Payment not found</h1>")
            return
        with self.sim.store.lock:
            text = pages.payment_page(tx)
        self._html(200, text)

    def page_post(self, token: str, step: str) -> None:
        """Apply a payment page form (choose a method, pay, a card outcome), then show the page again (303)."""
        tx = self.sim.store.by_token(token)
        if tx is None:
            self._html(404, "<h1>Payment not found</h1>")
            return
        data = self._data()
        try:
            if step == "choose":
                self.sim.act(tx.order_id, "pending", source="page", payment_type=str(data.get("method", "")))
            elif step == "pay":
                self.sim.act(tx.order_id, "settle", source="page")
            else:
                result = data.get("result", "accept")
                if result == "challenge":
                    self.sim.act(tx.order_id, "challenge", source="page")
                else:
                    with self.sim.store.lock:
                        if tx.payment_type != "credit_card" or tx.status != "pending":
                            self.sim.act(tx.order_id, "pending", notify="drop", source="page",
                                         payment_type="credit_card")
                    self.sim.act(tx.order_id, "deny" if result == "deny" else "settle", source="page")
        except (NotAllowed, BadRequest) as exc:
            self._html(409, f"<h1>Not possible</h1><p>{exc}</p><p><a href=''>Back</a></p>")
            return
        self._redirect(f"/snap/v2/vtweb/{token}")

    # -- control API ------------------------------------------------------------------------
    def config_get(self) -> None:
        self._json(200, dict(self.sim.store.config))

    def config_post(self) -> None:
        """Change the config from JSON or a form (the dashboard's, which asks for a redirect back)."""
        try:
            config = self.sim.store.update_config(self._data())
        except (TypeError, ValueError) as exc:
            self._json(400, {"error": str(exc)})
            return
        if self.query.get("redirect"):
            self._redirect("/")
        else:
            self._json(200, config)

    def reset(self) -> None:
        self.sim.store.reset()
        self._json(200, {"ok": True})

    def orders_list(self) -> None:
        self._json(200, [self.sim.tx_json(t) for t in self.sim.store.all()])

    def order_get(self, id: str) -> None:  # noqa: A002 - route parameter
        """Answer the transaction; with ``wait_attempts=N&timeout=S`` only once N delivery attempts are recorded."""
        tx = self.sim.store.get(id)
        if tx is None:
            self._json(404, {"error": f"unknown order {id}"})
            return
        if self.query.get("wait_attempts"):
            try:
                count, timeout = int(self.query["wait_attempts"]), float(self.query.get("timeout", 10))
            except ValueError:
                self._json(400, {"error": "wait_attempts must be an integer, timeout a number"})
                return
            self.sim.store.wait_attempts(tx.order_id, count, min(max(timeout, 0.0), 60.0))
        self._json(200, self.sim.tx_json(tx))

    def order_action(self, id: str, action: str) -> None:  # noqa: A002 - route parameter
        """Apply a move with its parameters (query or body): notify, payment_type, bank, again, amount, reason."""
        q = {**self._data(), **self.query}
        params: dict[str, Any] = {}
        if action in ("pending", "settle"):
            params = {"payment_type": q.get("payment_type"), "bank": q.get("bank")}
        if action == "settle" and str(q.get("again", "")).lower() in ("1", "true", "yes", "on"):
            params["again"] = True
        if action == "refund":
            params = {"reason": str(q.get("reason", "")), "refund_key": str(q.get("refund_key", ""))}
            if q.get("amount") not in (None, ""):
                try:
                    params["amount"] = int(float(q["amount"]))
                except (TypeError, ValueError):
                    self._json(400, {"error": "amount must be a number"})
                    return
        try:
            tx, _ = self.sim.act(id, action, notify=q.get("notify"), **params)
        except UnknownOrder:
            self._json(404, {"error": f"unknown order {id}"})
            return
        except BadRequest as exc:
            self._json(400, {"error": str(exc)})
            return
        except NotAllowed as exc:
            self._json(412, {"error": str(exc), "status": self._status_of(id)})
            return
        if q.get("redirect"):
            self._redirect("/")
        else:
            self._json(200, self.sim.tx_json(tx))

    def _status_of(self, order_id: str) -> str | None:
        tx = self.sim.store.get(order_id)
        return tx.status if tx else None

    def dashboard(self) -> None:
        txs = [self.sim.tx_json(t) for t in self.sim.store.all()]
        self._html(200, pages.dashboard(txs, dict(self.sim.store.config), self.sim.notify_url))


def make_server(host: str, port: int, sim: Simulator) -> SimulatorServer:
    """Bind the HTTP server (port 0 picks a free port)."""
    return SimulatorServer((host, port), sim)
