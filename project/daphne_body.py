"""Hand every request body to Django untouched: Twisted under daphne no longer parses form uploads.

Daphne's ``WebRequest`` is a ``twisted.web.http.Request`` left at Twisted's
default, which parses a POST body labelled ``multipart/form-data`` or
``application/x-www-form-urlencoded`` into ``request.args`` before daphne
passes the raw body to the application. Daphne never reads ``args``, so it was
a second parse of every form post (the checkout, the refresh button), and
Twisted's own content-type parsing (``email.message``) on every POST: about 3 %
of daphne's CPU on a notification (py-spy, docs/benchmarks.md). Worse, a body
that only claims to be multipart got Twisted's bare 400 and a disconnect:
nothing reached the webhook, so nothing was stored. Twisted's ``Request``
takes ``parsePOSTFormSubmission=False`` to opt out (twisted/twisted#12413; the
pinned 26.10 has it); daphne 4.2 does not pass it, so it is passed here.
Patched once, from ``ProjectConfig.ready()``.
"""

import functools
from typing import Any


def pass_bodies_through() -> None:
    """Make daphne's requests skip Twisted's form parsing (idempotent; no-op without daphne)."""
    try:
        from daphne.http_protocol import WebRequest
    except ImportError:
        return
    original = WebRequest.__init__
    if getattr(original, "passes_bodies_through", False):
        return

    @functools.wraps(original)
    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("parsePOSTFormSubmission", False)
        original(self, *args, **kwargs)

    init.passes_bodies_through = True  # type: ignore[attr-defined]
    WebRequest.__init__ = init
