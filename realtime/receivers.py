"""Relay committed payment changes to the order's websocket group.

The receiver runs wherever a payment changed: in daphne's sync-view threads
(a webhook, the manual refresh), in a django-q2 worker (the reconcile), in a
management command. It sends through one event loop per process, run by a
daemon thread (``_SenderLoop``), instead of ``async_to_sync``: that would
start a new loop (and a new Redis connection) for every call in a plain sync
process, and raises on a thread that already runs a loop.

It never raises: the change is already committed, and a lost broadcast is
covered by the client, which resyncs from a snapshot on every (re)connect and
offers the manual refresh.
"""

import asyncio
import concurrent.futures
import logging
import os
import threading
from collections.abc import Coroutine
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings

from checkout import metrics
from realtime.groups import order_group

logger = logging.getLogger("paywatch.realtime")

# Seconds a sync caller waits for Redis before giving up on one broadcast;
# bounded so that a hung Redis cannot hold a webhook answer or a worker.
DEFAULT_TIMEOUT = 2.0


class _SenderLoop:
    """An event loop in a daemon thread, started on first use and again after a fork."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pid = 0

    def loop(self) -> asyncio.AbstractEventLoop:
        """Return the running loop, starting its thread if needed (fork-safe)."""
        with self._lock:
            alive = self._thread is not None and self._thread.is_alive() and self._pid == os.getpid()
            if not alive:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="realtime-sender", daemon=True)
                thread.start()
                self._loop, self._thread, self._pid = loop, thread, os.getpid()
            assert self._loop is not None
            return self._loop

    def submit(self, coro: Coroutine[Any, Any, Any]) -> concurrent.futures.Future:
        """Schedule a coroutine on the loop; return its concurrent future."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop())

    def on_own_thread(self) -> bool:
        """Return whether the caller is the loop's own thread (it must never block on it)."""
        return self._thread is threading.current_thread()


_sender = _SenderLoop()


def payment_message(
    *, order_number: str, order_status: str, payment_status: str, version: int, source: str
) -> dict[str, Any]:
    """Return the SPEC's ``payment.status`` message."""
    return {
        "type": "payment.status",
        "order": order_number,
        "order_status": order_status,
        "payment_status": payment_status,
        "version": version,
        "source": source,
    }


def broadcast_payment_status(
    *, order_number: str, order_status: str, payment_status: str, version: int, source: str, **_: Any
) -> None:
    """Send one ``payment.status`` message to the order's group; never raise."""
    message = payment_message(order_number=order_number, order_status=order_status,
                              payment_status=payment_status, version=version, source=source)
    context = {"order": order_number, "version": version, "source": source}
    try:
        layer = get_channel_layer()
        if layer is None:
            raise RuntimeError("no channel layer configured")
        future = _sender.submit(layer.group_send(order_group(order_number), message))
    except Exception as exc:
        _count_failure("error", context, exc)
        return
    if _in_event_loop():
        # Blocking here would stall the caller's loop (or deadlock our own): report later.
        future.add_done_callback(lambda done: _report(done, context))
        return
    timeout = getattr(settings, "REALTIME_BROADCAST_TIMEOUT", DEFAULT_TIMEOUT)
    try:
        future.result(timeout=timeout)
    except concurrent.futures.TimeoutError:
        future.cancel()
        _count_failure("timeout", context)
    except Exception as exc:
        _count_failure("error", context, exc)
    else:
        metrics.broadcasts.labels(result="sent").inc()


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _sender.on_own_thread()
    return True


def _report(future: concurrent.futures.Future, context: dict[str, Any]) -> None:
    if future.cancelled():
        _count_failure("error", context)
    elif future.exception() is not None:
        _count_failure("error", context, future.exception())
    else:
        metrics.broadcasts.labels(result="sent").inc()


def _count_failure(result: str, context: dict[str, Any], exc: BaseException | None = None) -> None:
    """Log (with the traceback when there is one) and count a lost broadcast."""
    metrics.broadcasts.labels(result=result).inc()
    logger.error("Broadcast failed (%s)", result, exc_info=exc, extra=context)
