"""Turn off the access log Twisted keeps under daphne, which nobody reads.

Daphne's ``HTTPFactory`` leaves Twisted's own access log on: for every request
it formats a combined-log line (the full request target, so the order token in
``?t=``) and hands it to Twisted's log, which daphne forwards to the
``daphne.server`` logger at INFO, where settings.LOGGING's WARNING drops it.
Paywatch's access log is ``project/accesslog.py``; this line was only CPU on
the event loop (about 2 % of a webhook's, docs/benchmarks.md) and a token in a
string nobody needed. Patched once, from ``ProjectConfig.ready()``.
"""

from typing import Any


def silence_twisted_access_log() -> None:
    """Make daphne's HTTPFactory write no access line (idempotent; no-op without daphne)."""
    try:
        from daphne.http_protocol import HTTPFactory
    except ImportError:
        return
    if getattr(HTTPFactory.log, "silenced", False):
        return

    def log(self: Any, request: Any) -> None:
        """Write nothing: project/accesslog.py logs every request, without its query string."""

    log.silenced = True  # type: ignore[attr-defined]
    HTTPFactory.log = log
