"""Let daphne send close code 1013 (try again later), which the page is promised while Redis is down.

Daphne closes a socket through autobahn's ``sendClose``, which accepts only
1000 and 3000-4999 from a server and raises on anything else; daphne then
sends 1011 (internal error) instead. RFC 6455's registry gives servers 1012
(service restart), 1013 (try again later) and 1014 (bad gateway), so those are
sent through autobahn's lower-level ``sendCloseFrame``, as daphne itself does
for 1011. Patched once, from ``RealtimeConfig.ready()``.
"""

from typing import Any

SERVER_CLOSE_CODES = frozenset({1012, 1013, 1014})


def allow_server_close_codes() -> None:
    """Patch daphne's ``serverClose`` to send ``SERVER_CLOSE_CODES`` (idempotent; no-op without daphne)."""
    try:
        from daphne.ws_protocol import WebSocketProtocol
    except ImportError:
        return
    original = WebSocketProtocol.serverClose
    if getattr(original, "allows_server_close_codes", False):
        return

    def server_close(self: Any, code: int | None = None) -> None:
        if code in SERVER_CLOSE_CODES:
            self.sendCloseFrame(code=code, isReply=False)
        else:
            original(self, code)

    server_close.allows_server_close_codes = True  # type: ignore[attr-defined]
    WebSocketProtocol.serverClose = server_close
