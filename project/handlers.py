"""Django's ASGI handler, with the request's signals, middleware chain and view run in ONE hop to a sync thread.

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
The request's signals ride the same hop (``handle``): Django's handler hops
again for ``request_started`` and for ``response.close()``, and runs a task
listening for the client to leave; on a trivial view that was half of the
handler's CPU per request (900 against 430 µs, docs/benchmarks.md).
Async views still work: in sync mode Django runs them through
``async_to_sync`` on the same thread, and a streaming response's async
iterator is still consumed by ``send_response`` on the loop.
"""

import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.base import BaseHandler
from django.http import FileResponse, HttpResponseBase
from django.urls import set_script_prefix

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

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Serve one request with one hop to its thread: ``request_started``, the chain, ``request_finished``.

        Django's ``handle`` hops three times (``request_started``'s
        receivers, the chain, ``response.close()`` with ``request_finished``'s)
        and runs two tasks, one of them listening for the client to leave. A
        response that is not streamed is whole when the chain returns, so it
        is closed there, on the same thread, before its bytes are sent;
        nothing of the client's leaving could stop sync code anyway. A
        streamed response (the event stream, files) is sent as Django sends
        it, stopping when the client leaves, and closed after.
        """
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        try:
            response = await sync_to_async(self._respond, thread_sensitive=True)(scope, body_file)
            if response.streaming:
                await self._stream(response, receive, send)
            else:
                await self.send_response(response, send)
        finally:
            body_file.close()

    def _respond(self, scope: dict[str, Any], body_file: Any) -> HttpResponseBase:
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, response = self.create_request(scope, body_file)
        if request is not None:
            response = self.get_response(request)
            response._handler_class = self.__class__
            if isinstance(response, FileResponse):
                response.block_size = self.chunk_size
        if not response.streaming:
            response.close()
        return response

    async def _stream(self, response: HttpResponseBase, receive: Any, send: Any) -> None:
        """Send a streamed response until it ends or the client leaves (Django's way), then close it."""
        sending = asyncio.ensure_future(self.send_response(response, send))
        listening = asyncio.ensure_future(self.listen_for_disconnect(receive))
        try:
            await asyncio.wait([sending, listening], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (listening, sending):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, RequestAborted):
                    await task
            await sync_to_async(response.close, thread_sensitive=True)()


def get_asgi_application(middleware: list[str] | None = None) -> SyncChainASGIHandler:
    """Set Django up and return the handler (django.core.asgi.get_asgi_application's counterpart)."""
    import django

    django.setup(set_prefix=False)
    return SyncChainASGIHandler(middleware)
