"""The one way to talk to Midtrans: midtransclient with timeouts, pooling and our errors.

``midtransclient`` makes bare ``requests.request`` calls with no timeout and no
connection reuse; we hand it ``checkout.transport.MidtransTransport`` instead
(pooled, always timed, the environment read once), point its base URLs at
settings (so the local simulator can stand in), and translate its
exceptions. Never log ``ApiConfig``: its repr contains the server key.
"""

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import midtransclient
import requests
from django.conf import settings
from midtransclient.config import ApiConfig
from midtransclient.error_midtrans import JSONDecodeError, MidtransAPIError

from checkout import metrics
from checkout.errors import GatewayRejected, GatewayUnavailable, TransactionNotFound
from checkout.observations import Observation, observation_from_payload
from checkout.transport import MidtransTransport

logger = logging.getLogger("paywatch.gateway")


class _Config(ApiConfig):
    """ApiConfig whose base URLs come from settings rather than class constants."""

    def get_core_api_base_url(self) -> str:
        return settings.MIDTRANS["CORE_API_URL"]

    def get_snap_base_url(self) -> str:
        return settings.MIDTRANS["SNAP_API_URL"]


@dataclass(frozen=True)
class SnapTransaction:
    token: str
    redirect_url: str


_lock = threading.Lock()
_made: dict[tuple[Any, ...], tuple[midtransclient.Snap, midtransclient.CoreApi]] = {}


def _clients() -> tuple[midtransclient.Snap, midtransclient.CoreApi]:
    """Return this process's clients for the current settings (one transport, shared by every thread).

    Every reconcile chunk's threads are new ones: sharing the clients lets
    them reuse the pooled connections instead of each opening its own.
    """
    cfg = settings.MIDTRANS
    # The pid: a forked child (django-q2's workers) must not share its parent's pooled sockets.
    key = (os.getpid(), *(cfg[name] for name in ("IS_PRODUCTION", "SERVER_KEY", "CLIENT_KEY", "CORE_API_URL",
                                                 "SNAP_API_URL", "CONNECT_TIMEOUT", "READ_TIMEOUT")))
    made = _made.get(key)
    if made is None:
        with _lock:
            made = _made.get(key)
            if made is None:
                made = _make_clients(cfg)
                _made.clear()  # settings changed (tests): only the current clients are kept
                _made[key] = made
    return made


def _make_clients(cfg: dict[str, Any]) -> tuple[midtransclient.Snap, midtransclient.CoreApi]:
    transport = MidtransTransport((cfg["CONNECT_TIMEOUT"], cfg["READ_TIMEOUT"]),
                                  base_urls=(cfg["CORE_API_URL"], cfg["SNAP_API_URL"]))
    snap = midtransclient.Snap(is_production=cfg["IS_PRODUCTION"], server_key=cfg["SERVER_KEY"])
    core = midtransclient.CoreApi(is_production=cfg["IS_PRODUCTION"], server_key=cfg["SERVER_KEY"])
    for client in (snap, core):
        client.api_config = _Config(cfg["IS_PRODUCTION"], cfg["SERVER_KEY"], cfg["CLIENT_KEY"])
        client.http_client.http_client = transport
    return snap, core


@contextmanager
def _translated(op: str, order_id: str) -> Iterator[None]:
    """Turn midtransclient/requests failures into the project's exceptions."""
    started = time.monotonic()
    result = "ok"
    try:
        yield
    except GatewayUnavailable:
        result = "unavailable"
        raise
    except MidtransAPIError as exc:
        body = exc.api_response_dict if isinstance(exc.api_response_dict, dict) else {}
        code = _body_code(body) or exc.http_status_code
        extra = {"order_id": order_id, "http_status": exc.http_status_code, "response": body}
        if code == 404 or exc.http_status_code == 404:
            result = "not_found"
            raise TransactionNotFound(f"Midtrans has no transaction {order_id}", extra) from None
        if exc.http_status_code >= 500 or code >= 500 or code == 429 or exc.http_status_code == 429:
            result = "unavailable"
            raise GatewayUnavailable(f"Midtrans answered {exc.http_status_code} ({code})", extra) from None
        result = "rejected"
        messages = _messages(body)
        # Midtrans answers a reused order_id with 406, or 400 and "sudah digunakan".
        extra["order_id_taken"] = code == 406 or ("order_id" in messages and (
            "taken" in messages or "digunakan" in messages or "already" in messages))
        raise GatewayRejected(messages or f"Midtrans refused the request ({code})", extra) from None
    except JSONDecodeError:
        result = "unavailable"
        raise GatewayUnavailable("Midtrans answered with a non-JSON page", {"order_id": order_id}) from None
    except (AttributeError, TypeError, ValueError, KeyError) as exc:
        # midtransclient reads any 2xx JSON as an object (``response.keys()``,
        # ``int(status_code)``): a list, a string or a non-numeric code breaks it.
        result = "unavailable"
        raise GatewayUnavailable(f"Midtrans answered {op} with a body that is not a JSON object "
                                 f"({type(exc).__name__} in midtransclient)", {"order_id": order_id}) from None
    except requests.Timeout:
        result = "timeout"
        raise GatewayUnavailable("Midtrans did not answer in time", {"order_id": order_id}) from None
    except requests.RequestException as exc:
        result = "unavailable"
        raise GatewayUnavailable(f"Midtrans is unreachable ({type(exc).__name__})", {"order_id": order_id}) from None
    finally:
        metrics.gateway_calls.labels(op=op, result=result).inc()
        metrics.gateway_latency.labels(op=op).observe(time.monotonic() - started)
        if result != "ok":
            logger.warning("Midtrans call failed", extra={"op": op, "order_id": order_id, "result": result})


def _call(op: str, order_id: str, fn: Callable[[], Any], *required: str) -> dict[str, Any]:
    """Make one call; return its answer, an object with each ``required`` field as text."""
    with _translated(op, order_id):
        return _answer_object(op, order_id, fn(), *required)


def _body_code(body: dict[str, Any]) -> int:
    try:
        return int(body.get("status_code") or 0)
    except (TypeError, ValueError):
        return 0


def _messages(body: dict[str, Any]) -> str:
    messages = body.get("error_messages") or [body.get("status_message")]
    return "; ".join(str(m) for m in messages if m)


def _answer_object(op: str, order_id: str, answer: Any, *required: str) -> dict[str, Any]:
    """Return Midtrans's answer if it is an object with each ``required`` field as text; else raise."""
    if not isinstance(answer, dict):
        raise GatewayUnavailable(f"Midtrans answered {op} with a {type(answer).__name__}, not a JSON object",
                                 {"order_id": order_id})
    missing = [name for name in required if not isinstance(answer.get(name), str) or not answer[name].strip()]
    if missing:
        raise GatewayUnavailable(f"Midtrans answered {op} without {', '.join(missing)}",
                                 {"order_id": order_id, "missing": missing})
    return answer


def snap_create(parameters: dict[str, Any]) -> SnapTransaction:
    """Create a Snap transaction; return its token and redirect URL."""
    order_id = parameters["transaction_details"]["order_id"]
    snap, _ = _clients()
    answer = _call("snap_create", order_id, lambda: snap.create_transaction(parameters), "token", "redirect_url")
    return SnapTransaction(token=answer["token"], redirect_url=answer["redirect_url"])


def transaction_status(order_id: str) -> Observation:
    """Ask Midtrans for a transaction's status (GET /v2/<id>/status).

    An answer about another order is refused: applying it would let one
    order's status (a refund, a settlement) land on another.
    """
    _, core = _clients()
    body = _call("status", order_id, lambda: core.transactions.status(_quote(order_id)))
    if _body_code(body) == 404:
        raise TransactionNotFound(f"Midtrans has no transaction {order_id}", {"response": body})
    try:
        observation = observation_from_payload(body)
    except Exception as exc:
        raise GatewayUnavailable(f"Midtrans status answer unusable: {exc}", {"response": body}) from None
    if observation.order_id != order_id:
        logger.error("Midtrans answered about another order", extra={"asked": order_id,
                                                                     "answered": observation.order_id[:64]})
        raise GatewayUnavailable(f"Midtrans answered about order {observation.order_id[:64]!r}, not {order_id!r}",
                                 {"order_id": order_id})
    return observation


def _core_action(op: str, order_id: str) -> dict[str, Any]:
    """POST /v2/<id>/<op> through midtransclient; the answer must carry a status_code."""
    _, core = _clients()
    action = getattr(core.transactions, op)
    return _call(op, order_id, lambda: action(_quote(order_id)), "status_code")


def transaction_expire(order_id: str) -> dict[str, Any]:
    """Expire a pending transaction at Midtrans (POST /v2/<id>/expire)."""
    return _core_action("expire", order_id)


def transaction_cancel(order_id: str) -> dict[str, Any]:
    """Cancel a transaction at Midtrans (POST /v2/<id>/cancel)."""
    return _core_action("cancel", order_id)


def transaction_approve(order_id: str) -> dict[str, Any]:
    """Accept a challenged card payment at Midtrans (POST /v2/<id>/approve)."""
    return _core_action("approve", order_id)


def transaction_deny(order_id: str) -> dict[str, Any]:
    """Deny a challenged card payment at Midtrans (POST /v2/<id>/deny)."""
    return _core_action("deny", order_id)


def transaction_refund(order_id: str, *, refund_key: str, amount: int, reason: str = "") -> dict[str, Any]:
    """Refund a settled payment, all or part (POST /v2/<id>/refund).

    ``refund_key`` makes the call safe to repeat: Midtrans answers a key it
    has seen with that refund instead of making another.
    """
    _, core = _clients()
    parameters = {"refund_key": refund_key, "amount": amount, "reason": reason}
    return _call("refund", order_id, lambda: core.transactions.refund(_quote(order_id), parameters), "status_code")


def _quote(order_id: str) -> str:
    # midtransclient does not URL-encode ids; ours are [A-Z0-9-] but be safe.
    return requests.utils.quote(order_id, safe="")
