"""Relay committed payment changes to the order's websocket group."""

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from checkout import metrics
from realtime.groups import order_group

logger = logging.getLogger("paywatch.realtime")


def broadcast_payment_status(
    *, order_number: str, order_status: str, payment_status: str, version: int, source: str, **_: Any
) -> None:
    """Send one ``payment.status`` message; never raise (the change is already committed).

    A lost broadcast is covered by the client, which resyncs from a snapshot
    on every (re)connect and offers the manual refresh.
    """
    message = {
        "type": "payment.status",
        "order": order_number,
        "order_status": order_status,
        "payment_status": payment_status,
        "version": version,
        "source": source,
    }
    try:
        layer = get_channel_layer()
        async_to_sync(layer.group_send)(order_group(order_number), message)
    except Exception:
        metrics.broadcasts.labels(result="error").inc()
        logger.exception("Broadcast failed", extra={"order": order_number, "version": version})
    else:
        metrics.broadcasts.labels(result="sent").inc()
