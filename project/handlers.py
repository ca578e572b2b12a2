"""Django's ASGI handler, with the whole middleware chain and view run in ONE hop to a sync thread.

Django's own ASGIHandler runs the chain in async mode. Every middleware here
is sync (ours) or MiddlewareMixin (Django's, whitenoise, django-csp,
django-prometheus), so in async mode each ``process_request``/
``process_view``/``process_response`` and the view itself is a separate
``sync_to_async`` hop to the request's thread and back (a future, a
condition wait and a loop wake-up each: 8 hops a request). Profiled on the
webhook at its knee (docs/benchmarks.md, "Webhook throughput") that bridge was
27–45% of daphne's CPU, more than the ORM. Loading the chain in sync mode
(as under WSGI) and entering it once costs one hop. Measured against the
alternatives: marking our middleware ``async_capable = False`` still leaves
Django's inner ``_get_response_async`` with a hop back to the loop and one per
``process_view``, and an async webhook view removes only the view's own hop.

Thread-sensitivity is unchanged: the hop is ``thread_sensitive``, so the chain
runs on the request's own thread (asgiref's ThreadSensitiveContext, as in
Django's handler), where ``request_started``/``request_finished`` close or
return its database connection. Only that thread is no longer new for every
request: Django's handler starts one (and joins it) per request, which was
the next largest cost; here the request borrows an idle single-thread
executor and gives it back (``ThreadSensitiveContext(executor=...)``, whose
caller owns the executor). One request at a time per executor, as before.
Async views still work: in sync mode Django runs them through
``async_to_sync`` on the same thread, and a streaming response's async
iterator is still consumed by ``send_response`` on the loop.
"""

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.base import BaseHandler
from django.http import HttpRequest, HttpResponseBase

# Idle request threads kept for reuse; more requests at once than this start (and later end) their own.
MAX_IDLE_THREADS = 64


class SyncChainASGIHandler(ASGIHandler):
    """An ASGIHandler whose middleware chain is loaded in sync mode and entered once per request."""

    def __init__(self, middleware: list[str] | None = None) -> None:
        BaseHandler.__init__(self)
        self._load_chain(middleware)
        self._idle: list[ThreadPoolExecutor] = []  # touched only on the event loop's thread

    def _load_chain(self, middleware: list[str] | None) -> None:
        """Load ``middleware`` (default: settings.MIDDLEWARE) in sync mode.

        Django's loader reads only settings.MIDDLEWARE: another chain is lent
        to it for the time it takes to load, at start-up, before any request.
        """
        if middleware is None:
            self.load_middleware(is_async=False)
            return
        saved = settings.MIDDLEWARE
        settings.MIDDLEWARE = middleware
        try:
            self.load_middleware(is_async=False)
        finally:
            settings.MIDDLEWARE = saved

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Serve one HTTP request on a reused request thread."""
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        executor = self._idle.pop() if self._idle else ThreadPoolExecutor(1, thread_name_prefix="request")
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            # A cancelled request's sync code may still be running there: the next one simply queues behind it.
            if len(self._idle) < MAX_IDLE_THREADS:
                self._idle.append(executor)
            else:
                executor.shutdown(wait=False)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        """Run the sync chain (middleware, view, exception handling) on the request's thread in one hop."""
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)


def get_asgi_application(middleware: list[str] | None = None) -> SyncChainASGIHandler:
    """Set Django up and return the handler (django.core.asgi.get_asgi_application's counterpart)."""
    import django

    django.setup(set_prefix=False)
    return SyncChainASGIHandler(middleware)
