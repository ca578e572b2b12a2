"""Relay committed payment changes to the order's websocket group, without ever waiting for Redis.

The receiver runs wherever a payment changed: in daphne's request threads (a
webhook, the manual refresh), in a django-q2 worker (the reconcile), in a
management command. It hands the send to one event loop per process, run by
a daemon thread (``_SenderLoop``), and returns at once: ``async_to_sync``
would start a new loop (and a new Redis connection) per call in a plain sync
process and raises on a thread that already runs a loop, and waiting for the
send would let a slow Redis hold Midtrans's answer (a webhook at 300/s with
Redis stalled for 2 s would pile up 600 request threads).

At most ``REALTIME_BROADCAST_MAX_IN_FLIGHT`` sends are pending per process;
past that a broadcast is dropped and counted, and each send gives up after
``REALTIME_BROADCAST_TIMEOUT`` seconds. A dropped or failed broadcast is not a
lost change: the waiting page's heartbeat (realtime/consumers.py) and the
event stream's version check (realtime/sse.py) send the current status to any
page that shows an older version. A process that exits (a management
command, a worker) first waits, bounded, for its pending sends.

It never raises: the change is already committed.
"""

import asyncio
import atexit
import logging
import multiprocessing.util
import os
import threading
import time
from collections.abc import Coroutine
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings

from checkout import metrics
from checkout.display import view_state
from realtime.groups import order_group

logger = logging.getLogger("paywatch.realtime")

# Seconds one send may take before it is given up (on the sender loop; no caller waits for it).
DEFAULT_TIMEOUT = 2.0
# Sends pending at once per process; one more is dropped (the heartbeat resync delivers it).
DEFAULT_MAX_IN_FLIGHT = 1000


class _SenderLoop:
    """An event loop in a daemon thread, started on first use and again after a fork; counts pending sends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._pending = 0
        os.register_at_fork(after_in_child=self._forget_parent)

    def _forget_parent(self) -> None:
        # A fork copies neither the loop's thread nor its sends, and may copy the lock held.
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._thread, self._pending = None, 0

    def loop(self) -> asyncio.AbstractEventLoop:
        """Return the running loop, starting its thread if needed (fork-safe)."""
        with self._lock:
            return self._loop_locked()

    def _loop_locked(self) -> asyncio.AbstractEventLoop:
        alive = self._thread is not None and self._thread.is_alive() and self._pid == os.getpid()
        if not alive:
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="realtime-sender", daemon=True)
            thread.start()
            if self._pid != os.getpid():
                # A new process needs its own exit hook: atexit for a plain process, a multiprocessing
                # finalizer for a django-q2 worker (a forked child leaves through os._exit, which skips
                # atexit but runs these finalizers).
                atexit.register(flush_at_exit)
                multiprocessing.util.Finalize(None, flush_at_exit, exitpriority=10)
            self._loop, self._thread, self._pid = loop, thread, os.getpid()
        assert self._loop is not None
        return self._loop

    def submit(self, coro: Coroutine[Any, Any, Any], limit: int) -> bool:
        """Schedule a send that calls ``done()`` when it ends; False (coroutine closed) if ``limit`` are pending."""
        with self._lock:
            loop = self._loop_locked()
            if self._pending >= limit:
                coro.close()
                return False
            self._pending += 1
        asyncio.run_coroutine_threadsafe(coro, loop)
        return True

    def done(self) -> None:
        """Count one send as finished (whatever its result)."""
        with self._lock:
            self._pending -= 1
            if self._pending <= 0:
                self._idle.notify_all()

    def pending(self) -> int:
        """Return how many sends have not finished yet."""
        with self._lock:
            return self._pending

    def flush(self, timeout: float) -> int:
        """Wait up to ``timeout`` seconds for the pending sends; return how many are still pending."""
        with self._lock:
            if self._thread is threading.current_thread():
                return self._pending  # the loop's own thread cannot wait for itself
            self._idle.wait_for(lambda: self._pending <= 0, timeout=timeout)
            return self._pending

    def on_own_thread(self) -> bool:
        """Return whether the caller is the loop's own thread (it must never block on it)."""
        return self._thread is threading.current_thread()


_sender = _SenderLoop()


def payment_message(
    *, order_number: str, order_status: str, payment_status: str, version: int, source: str,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Return the ``payment.status`` message, with the page's view ``state`` and, when given, the method's details."""
    message = {
        "type": "payment.status",
        "order": order_number,
        "order_status": order_status,
        "payment_status": payment_status,
        "version": version,
        "source": source,
        "state": view_state(payment_status, order_status),
    }
    if details is not None:
        message["details"] = details
    return message


def broadcast_payment_status(
    *, order_number: str, order_status: str, payment_status: str, version: int, source: str,
    details: dict[str, Any] | None = None, **_: Any,
) -> None:
    """Hand one ``payment.status`` message for the order's group to the sender loop; never block, never raise."""
    message = payment_message(order_number=order_number, order_status=order_status,
                              payment_status=payment_status, version=version, source=source, details=details)
    context = {"order": order_number, "version": version, "source": source}
    try:
        layer = get_channel_layer()
        if layer is None:
            raise RuntimeError("no channel layer configured")
        timeout = getattr(settings, "REALTIME_BROADCAST_TIMEOUT", DEFAULT_TIMEOUT)
        limit = getattr(settings, "REALTIME_BROADCAST_MAX_IN_FLIGHT", DEFAULT_MAX_IN_FLIGHT)
        submitted = _sender.submit(_send(layer, order_group(order_number), message, timeout, context), limit)
    except Exception as exc:
        _count_failure("error", context, exc)
        return
    if not submitted:
        metrics.broadcasts.labels(result="dropped").inc()
        _log_drops()


async def _send(layer: Any, group: str, message: dict[str, Any], timeout: float, context: dict[str, Any]) -> None:
    """Send on the sender loop, bounded by ``timeout``; count the result before the send counts as done."""
    try:
        await asyncio.wait_for(layer.group_send(group, message), timeout)
    except TimeoutError:
        _count_failure("timeout", context)
    except Exception as exc:
        _count_failure("error", context, exc)
    except asyncio.CancelledError:
        _count_failure("error", context)
        raise
    else:
        metrics.broadcasts.labels(result="sent").inc()
    finally:
        _sender.done()


def flush(timeout: float | None = None) -> int:
    """Wait (at most ``timeout`` seconds, default the send timeout + 1) for pending broadcasts; return those left."""
    if timeout is None:
        timeout = getattr(settings, "REALTIME_BROADCAST_TIMEOUT", DEFAULT_TIMEOUT) + 1.0
    return _sender.flush(timeout)


def flush_at_exit() -> None:
    """Get this process's pending broadcasts out before it exits (bounded by the send timeout)."""
    try:
        left = flush()
    except Exception:  # never turn an exit into a traceback
        return
    if left:
        logger.warning("Exiting with %d broadcasts still pending", left)


_drops = {"count": 0, "logged_at": 0.0}


def _log_drops() -> None:
    """Say at most every 10 s how many were dropped: a line per drop would add to the overload that caused it."""
    _drops["count"] += 1
    now = time.monotonic()
    if now - _drops["logged_at"] >= 10:
        logger.warning("Broadcasts dropped: %d sends already pending (the heartbeat resync delivers them)",
                       _drops["count"])
        _drops.update(count=0, logged_at=now)


def _count_failure(result: str, context: dict[str, Any], exc: BaseException | None = None) -> None:
    """Log (with the traceback when there is one) and count a broadcast that did not go out."""
    metrics.broadcasts.labels(result=result).inc()
    logger.error("Broadcast failed (%s)", result, exc_info=exc, extra=context)
