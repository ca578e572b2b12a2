"""Wait for a payment's status the way the customer's page does: over its websocket."""

import json
import time
from typing import Any

from websockets.sync.client import connect


def wait_for_ws_status(ws_url: str, wanted: str, timeout: float = 20.0, origin: str | None = None) -> dict[str, Any]:
    """Connect, then read the snapshot and changes until ``payment_status == wanted``; return that message."""
    deadline = time.monotonic() + timeout
    seen: list[dict[str, Any]] = []
    origin = origin or ws_url.replace("ws://", "http://", 1).split("/ws/")[0]
    with connect(ws_url, origin=origin, open_timeout=10) as socket:
        while (left := deadline - time.monotonic()) > 0:
            try:
                message = json.loads(socket.recv(timeout=left))
            except TimeoutError:
                break
            seen.append(message)
            if message.get("payment_status") == wanted:
                return message
    raise AssertionError(f"no {wanted!r} within {timeout} s; saw {seen}")
