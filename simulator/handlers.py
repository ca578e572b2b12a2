"""Request handlers: read the request, ask the Simulator, shape Midtrans's answer (simulator/routes.py maps URLs here).

Each takes the Simulator, the Request and the path's parameters, and returns
a Response (None: hang up without answering, an injected timeout).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from simulator import pages
from simulator.app import Simulator, UnknownOrder
from simulator.charge import ChargeError, card_token, qr_png
from simulator.engine import BadRequest, NotAllowed, NotFound
from simulator.payloads import cannot_modify_body, not_found_body
from simulator.snap import SnapError
from simulator.web import Handler, Request, Response, html_response, json_response, redirect

SNAP_UNAUTHORIZED = {"error_messages": [
    "Access denied due to unauthorized transaction, please check client or server key",
    "Visit https://snap-docs.midtrans.com/#request-headers for more details",
]}
CORE_UNAUTHORIZED = {
    "status_code": "401",
    "status_message": "Transaction cannot be authorized with the current client/server key.",
    "id": "-",
}
FAULT_MESSAGES = {
    500: "Sorry. Our system is recovering from unexpected issues. Please retry.",
    503: "Service is temporarily unavailable. Please retry.",
    429: "Too many requests. Please retry later.",
}
HTML_502 = (b"<html><head><title>502 Bad Gateway</title></head><body>"
            b"<center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>")
# An injected timeout holds the request this long (or until shutdown), then hangs up.
TIMEOUT_SECONDS = 30
MAX_NOTIFICATION_URLS = 3  # per header, as Midtrans documents


def gateway_api(*, snap: bool) -> Callable[[Handler], Handler]:
    """Guard a Snap or Core API handler: the server key as Basic auth user, then the injected faults.

    Both answer in the API's own error shape: Snap's ``error_messages``, the
    Core API's ``status_code``/``status_message``.
    """
    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def guarded(sim: Simulator, request: Request, **params: str) -> Response | None:
            if request.basic_auth_user() != sim.server_key:
                return json_response(401, SNAP_UNAUTHORIZED if snap else CORE_UNAUTHORIZED)
            fault = sim.injected_fault()
            if fault is None:
                return handler(sim, request, **params)
            if fault == "timeout":
                sim.stop.wait(TIMEOUT_SECONDS)
                return None
            if fault == "html502":
                return Response(502, HTML_502, "text/html")
            status = int(fault)
            message = FAULT_MESSAGES[status]
            return json_response(status, {"error_messages": [message]} if snap
                                 else {"status_code": str(status), "status_message": message})
        return guarded
    return decorate


def parse_notification_urls(value: str | None) -> list[str]:
    """Split an X-Override-Notification / X-Append-Notification value: comma-separated http(s) URLs, at most 3.

    URLs past the third, and values that are not http(s) URLs, are dropped
    (Midtrans documents the limit, not what it does beyond it).
    """
    urls = [u.strip() for u in (value or "").split(",")]
    return [u for u in urls if u.startswith(("http://", "https://"))][:MAX_NOTIFICATION_URLS]


def _notification_urls(request: Request) -> dict[str, list[str]]:
    return {"override": parse_notification_urls(request.headers.get("X-Override-Notification")),
            "append": parse_notification_urls(request.headers.get("X-Append-Notification"))}


def _refund_params(data: dict[str, Any]) -> dict[str, Any]:
    """Return a refund's parameters from a request (ValueError when the amount is not a number)."""
    params: dict[str, Any] = {"reason": str(data.get("reason") or ""), "refund_key": str(data.get("refund_key") or "")}
    if data.get("amount") is not None:
        try:
            params["amount"] = int(float(data["amount"]))
        except (TypeError, ValueError):
            raise ValueError("amount must be a number") from None
    return params


# -- Snap and Core API --------------------------------------------------------------------
def healthz(sim: Simulator, request: Request) -> Response:
    return json_response(200, {"ok": True})


@gateway_api(snap=True)
def snap_create(sim: Simulator, request: Request) -> Response:
    try:
        tx = sim.create_transaction(request.json(), request.base_url, **_notification_urls(request))
    except SnapError as exc:
        return json_response(exc.status, {"error_messages": exc.messages})
    return json_response(201, {"token": tx.token, "redirect_url": tx.redirect_url})


@gateway_api(snap=False)
def core_charge(sim: Simulator, request: Request) -> Response:
    """POST /v2/charge: HTTP 200 with the body's own status_code (201 pending, 200 capture, 202 deny)."""
    try:
        answer = sim.charge(request.json(), request.base_url, **_notification_urls(request))
    except ChargeError as exc:
        return json_response(exc.status, exc.body)
    return json_response(200, answer)


def core_token(sim: Simulator, request: Request) -> Response:
    """GET /v2/token: Midtrans takes the client key as a query parameter; midtransclient sends the server key."""
    if not request.query.get("client_key") and request.basic_auth_user() != sim.server_key:
        return json_response(401, CORE_UNAUTHORIZED)
    try:
        return json_response(200, card_token(request.query))
    except ChargeError as exc:
        return json_response(exc.status, exc.body)


def qr_code(sim: Simulator, request: Request, kind: str, id: str) -> Response:  # noqa: A002 - route parameter
    """The generate-qr-code action: a PNG, no auth (Midtrans's URL is meant for a browser or a POS)."""
    tx = sim.store.get(id)
    if tx is None or tx.payment_type != kind:
        return json_response(404, not_found_body())
    return Response(200, qr_png(f"{tx.transaction_id}:{tx.gross_amount}"), "image/png")


def gopay_deeplink(sim: Simulator, request: Request, id: str) -> Response:  # noqa: A002 - route parameter
    """The deeplink-redirect action: Midtrans opens the Gojek app; here the payment page stands in for it."""
    tx = sim.store.get(id)
    if tx is None or tx.payment_type != "gopay":
        return json_response(404, not_found_body())
    return redirect(f"/snap/v2/vtweb/{tx.token}", status=302)


@gateway_api(snap=False)
def core_status(sim: Simulator, request: Request, id: str) -> Response:  # noqa: A002 - route parameter
    body = sim.status(id)
    return json_response(404, not_found_body()) if body is None else json_response(200, body)


@gateway_api(snap=False)
def core_status_b2b(sim: Simulator, request: Request, id: str) -> Response:  # noqa: A002 - route parameter
    """GET /v2/<id>/status/b2b[?page=P&per_page=N]: every payment under the order id, newest first."""
    tx = sim.known_payment(id)
    if tx is None:
        return json_response(404, not_found_body())
    try:
        page = max(0, int(request.query.get("page") or 0))
        per_page = max(0, int(request.query.get("per_page") or 0)) or None
    except ValueError:
        return json_response(400, {"status_code": "400", "status_message": "page and per_page must be integers"})
    return json_response(200, sim.b2b_body(tx, page, per_page))


@gateway_api(snap=False)
def core_action(sim: Simulator, request: Request, id: str, action: str) -> Response:  # noqa: A002
    """POST /v2/<id>/cancel|expire|refund|approve|deny: 404 unknown, 412 not allowed in this status."""
    try:
        params = _refund_params(request.form()) if action == "refund" else {}
    except ValueError as exc:
        return json_response(400, {"status_code": "400", "status_message": str(exc)})
    try:
        return json_response(200, sim.merchant_action(id, action, **params))
    except (UnknownOrder, NotFound):
        return json_response(404, not_found_body())
    except NotAllowed as exc:
        body = cannot_modify_body()
        if action == "refund" and "amount" in str(exc):
            body["status_message"] = f"Refund amount is invalid: {exc}"
        return json_response(412, body)


# -- payment page -------------------------------------------------------------------------
def page(sim: Simulator, request: Request, token: str) -> Response:
    tx = sim.page_view(token)
    if tx is None:
        return html_response(404, pages.not_found())
    return html_response(200, pages.payment_page(tx))


def page_post(sim: Simulator, request: Request, token: str, step: str) -> Response:
    """Apply a payment page form (choose a method, pay, a card outcome), then show the page again (303)."""
    tx = sim.store.by_token(token)
    if tx is None:
        return html_response(404, pages.not_found())
    data = request.form()
    try:
        if step == "choose":
            sim.act(tx.order_id, "pending", source="page", payment_type=str(data.get("method", "")))
        elif step == "pay":
            sim.act(tx.order_id, "settle", source="page")
        else:
            sim.pay_by_card(tx.order_id, str(data.get("result", "accept")))
    except (NotAllowed, BadRequest) as exc:
        return html_response(409, pages.not_possible(str(exc)))
    return redirect(f"/snap/v2/vtweb/{token}")


# -- control API and dashboard --------------------------------------------------------------
def config_get(sim: Simulator, request: Request) -> Response:
    return json_response(200, dict(sim.store.config))


def config_post(sim: Simulator, request: Request) -> Response:
    """Change the config from JSON or a form (the dashboard's, which asks for a redirect back)."""
    try:
        config = sim.store.update_config(request.form())
    except (TypeError, ValueError) as exc:
        return json_response(400, {"error": str(exc)})
    return redirect("/") if request.query.get("redirect") else json_response(200, config)


def reset(sim: Simulator, request: Request) -> Response:
    sim.store.reset()
    return json_response(200, {"ok": True})


def orders_list(sim: Simulator, request: Request) -> Response:
    return json_response(200, [sim.tx_json(t) for t in sim.store.all()])


def order_get(sim: Simulator, request: Request, id: str) -> Response:  # noqa: A002 - route parameter
    """Answer the transaction; with ``wait_attempts=N&timeout=S`` only once N delivery attempts are recorded."""
    tx = sim.store.get(id)
    if tx is None:
        return json_response(404, {"error": f"unknown order {id}"})
    if request.query.get("wait_attempts"):
        try:
            count, timeout = int(request.query["wait_attempts"]), float(request.query.get("timeout", 10))
        except ValueError:
            return json_response(400, {"error": "wait_attempts must be an integer, timeout a number"})
        sim.store.wait_attempts(tx.order_id, count, min(max(timeout, 0.0), 60.0))
    return json_response(200, sim.tx_json(tx))


def order_action(sim: Simulator, request: Request, id: str, action: str) -> Response:  # noqa: A002
    """Apply a move with its parameters (query or body): notify, payment_type, bank, again, amount, reason."""
    # A blank value (an empty form field, ``--amount ''``) counts as not given.
    q = {k: v for k, v in {**request.form(), **request.query}.items() if v not in (None, "")}
    params: dict[str, Any] = {}
    if action in ("pending", "settle"):
        params = {"payment_type": q.get("payment_type"), "bank": q.get("bank")}
    if action == "settle" and str(q.get("again", "")).lower() in ("1", "true", "yes", "on"):
        params["again"] = True
    try:
        if action == "refund":
            params = _refund_params(q)
    except ValueError as exc:
        return json_response(400, {"error": str(exc)})
    try:
        tx, _ = sim.act(id, action, notify=q.get("notify"), **params)
    except UnknownOrder:
        return json_response(404, {"error": f"unknown order {id}"})
    except BadRequest as exc:
        return json_response(400, {"error": str(exc)})
    except NotAllowed as exc:
        current = sim.store.get(id)
        return json_response(412, {"error": str(exc), "status": current.status if current else None})
    return redirect("/") if q.get("redirect") else json_response(200, sim.tx_json(tx))


def dashboard(sim: Simulator, request: Request) -> Response:
    transactions = [sim.tx_json(t) for t in sim.store.all()]
    return html_response(200, pages.dashboard(transactions, dict(sim.store.config), sim.notify_url))
