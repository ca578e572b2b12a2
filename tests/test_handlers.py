"""The ASGI handler: the middleware chain is entered once, on a request thread that is reused."""

import asyncio
import threading

import pytest
from asgiref.sync import iscoroutinefunction
from channels.testing import HttpCommunicator
from django.http import HttpResponse, StreamingHttpResponse
from django.urls import path

from project.handlers import SyncChainASGIHandler

seen: list[str] = []


def where(request):
    seen.append(threading.current_thread().name)
    return HttpResponse("ok")


async def async_view(request):
    return HttpResponse("async ok")


def stream(request):
    async def ticks():
        while True:
            yield b"tick"
            await asyncio.sleep(0.05)

    return StreamingHttpResponse(ticks())


urlpatterns = [path("where", where), path("async", async_view), path("stream", stream)]


@pytest.fixture
def handler(settings) -> SyncChainASGIHandler:
    settings.ROOT_URLCONF = __name__
    settings.ALLOWED_HOSTS = ["unknown"]  # what HttpCommunicator's scope (no Host header) resolves to
    return SyncChainASGIHandler()


def test_the_chain_is_loaded_in_sync_mode(handler):
    """One hop into the chain: no middleware, nor the chain itself, is async."""
    assert not iscoroutinefunction(handler._middleware_chain)


def test_requests_one_after_another_reuse_one_request_thread(handler, db):
    """Django's own handler starts a thread per request; this one lends an idle one."""
    seen.clear()

    async def two() -> list[int]:
        statuses = []
        for _ in range(2):
            answer = await HttpCommunicator(handler, "GET", "/where").get_response(timeout=10)
            statuses.append(answer["status"])
        return statuses

    assert asyncio.run(two()) == [200, 200]
    assert len(seen) == 2 and seen[0] == seen[1] and seen[0].startswith("request")
    assert seen[0] != threading.current_thread().name


def test_a_request_with_its_signals_is_one_hop_to_its_thread(handler, db, monkeypatch):
    """request_started, the chain and request_finished run on the request's thread in one hop (Django makes three)."""
    from django.core.signals import request_finished, request_started

    from project import handlers

    hops, threads = [], []

    def counted(fn, **kwargs):
        hops.append(getattr(fn, "__name__", repr(fn)))
        return real(fn, **kwargs)

    def started(**kwargs):
        threads.append(("started", threading.current_thread().name))

    def finished(**kwargs):
        threads.append(("finished", threading.current_thread().name))

    real = handlers.sync_to_async
    monkeypatch.setattr(handlers, "sync_to_async", counted)
    request_started.connect(started)
    request_finished.connect(finished)
    seen.clear()
    try:
        answer = asyncio.run(HttpCommunicator(handler, "GET", "/where").get_response(timeout=10))
    finally:
        request_started.disconnect(started)
        request_finished.disconnect(finished)
    assert answer["status"] == 200 and len(hops) == 1
    assert [name for name, _ in threads] == ["started", "finished"]
    assert {thread for _, thread in threads} == {seen[0]}  # the view's own thread


def test_a_streamed_response_stops_when_the_client_leaves(handler, db):
    """A stream is not closed early: it is sent as it comes, and closed (request_finished) once the client is gone."""
    from django.core.signals import request_finished

    finished = []

    def on_finished(**kwargs):
        finished.append(True)

    async def scenario() -> list[bytes]:
        communicator = HttpCommunicator(handler, "GET", "/stream")
        await communicator.send_input({"type": "http.request", "body": b""})
        start = await communicator.receive_output(timeout=10)
        first = await communicator.receive_output(timeout=10)
        assert not finished  # still streaming
        await communicator.send_input({"type": "http.disconnect"})
        await communicator.wait(timeout=10)
        return [start["status"], first["body"]]

    request_finished.connect(on_finished)
    try:
        assert asyncio.run(scenario()) == [200, b"tick"]
    finally:
        request_finished.disconnect(on_finished)
    assert finished == [True]


def test_an_async_view_still_works(handler, db):
    answer = asyncio.run(HttpCommunicator(handler, "GET", "/async").get_response(timeout=10))
    assert (answer["status"], answer["body"]) == (200, b"async ok")


@pytest.mark.django_db(transaction=True)
def test_the_webhook_takes_its_own_short_chain_and_pages_the_whole_one(make_order):
    """Through the real application: the notification skips the pages' middleware, keeps the shared headers."""
    from project.asgi import application

    host = [(b"host", b"127.0.0.1")]

    async def both() -> tuple[dict, dict]:
        webhook = await HttpCommunicator(application, "POST", "/payments/midtrans/notification", body=b"{",
                                         headers=[*host, (b"content-type", b"application/json")]).get_response(10)
        page = await HttpCommunicator(application, "GET", "/", headers=host).get_response(10)
        return webhook, page

    webhook, page = asyncio.run(both())
    webhook_headers, page_headers = ({k.decode().lower(): v for k, v in answer["headers"]}
                                     for answer in (webhook, page))
    assert webhook["status"] == 400 and b"not valid JSON" in webhook["body"]  # the view still answers
    for shared in ("x-content-type-options", "x-frame-options"):
        assert shared in webhook_headers and shared in page_headers
    # The page's chain sets CSP and varies by language; the webhook's has neither.
    assert "content-security-policy" in page_headers and "content-security-policy" not in webhook_headers
    assert b"Accept-Language" in page_headers.get("vary", b"") and "vary" not in webhook_headers
