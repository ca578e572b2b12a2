"""The ASGI handler: the middleware chain is entered once, on a request thread that is reused."""

import asyncio
import threading

import pytest
from asgiref.sync import iscoroutinefunction
from channels.testing import HttpCommunicator
from django.http import HttpResponse
from django.urls import path

from project.handlers import SyncChainASGIHandler

seen: list[str] = []


def where(request):
    seen.append(threading.current_thread().name)
    return HttpResponse("ok")


async def async_view(request):
    return HttpResponse("async ok")


urlpatterns = [path("where", where), path("async", async_view)]


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
