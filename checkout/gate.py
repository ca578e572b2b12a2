"""The webhook's admission gate, in front of Django (see ``WebhookGate``)."""

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings
from django.urls import reverse

from checkout import metrics
from project.middleware import RETRY_AFTER_SECONDS

logger = logging.getLogger("paywatch.webhook")


class WebhookGate:
    """ASGI middleware in front of Django: past WEBHOOK_MAX_IN_FLIGHT notifications in this process, a 503 at once.

    Past the knee every extra request only makes all of them slower (they
    share the cores and the database) until Midtrans's 15 s timeout turns
    them all into retries; refusing the excess keeps the admitted ones fast.
    The refusal is made here, on the event loop, because made in the view it
    came after a hop to a request thread and the whole middleware chain, so
    at twice the knee even the 503s queued for a second (docs/benchmarks.md).
    Nothing is read or stored: Midtrans sends it again. The count lives on
    the event loop's thread, so it needs no lock. Admitted notifications go to
    ``webhook_app`` (settings.WEBHOOK_MIDDLEWARE's shorter chain) when given.
    """

    def __init__(self, app: Callable[..., Awaitable[None]],
                 webhook_app: Callable[..., Awaitable[None]] | None = None) -> None:
        self.app = app
        self.webhook_app = webhook_app or app
        self.in_flight = 0
        self.refused = 0
        self._logged_at = 0.0
        self._path = ""

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Awaitable[Any]],
                       send: Callable[..., Awaitable[None]]) -> None:
        if scope["type"] != "http" or scope["path"] != self._webhook_path():
            return await self.app(scope, receive, send)
        limit = settings.WEBHOOK_MAX_IN_FLIGHT
        if 0 < limit <= self.in_flight:
            return await self._refuse(send)
        self.in_flight += 1
        try:
            return await self.webhook_app(scope, receive, send)
        finally:
            self.in_flight -= 1

    def _webhook_path(self) -> str:
        if not self._path:
            self._path = reverse("checkout:midtrans-notification")
        return self._path

    async def _refuse(self, send: Callable[..., Awaitable[None]]) -> None:
        self.refused += 1
        now = time.monotonic()
        if now - self._logged_at >= 10:  # a line per refusal would add to the overload
            logger.warning("Webhooks refused with 503: too many in flight", extra={
                "refused": self.refused, "max_in_flight": settings.WEBHOOK_MAX_IN_FLIGHT})
            self.refused, self._logged_at = 0, now
        metrics.webhooks.labels(status="503").inc()
        body = json.dumps({"error": "too many notifications at once; retry later",
                           "retry_after": RETRY_AFTER_SECONDS}).encode()
        await send({"type": "http.response.start", "status": 503, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(RETRY_AFTER_SECONDS).encode()), (b"cache-control", b"no-store")]})
        await send({"type": "http.response.body", "body": body})
