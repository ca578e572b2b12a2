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
