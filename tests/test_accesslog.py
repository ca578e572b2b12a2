"""The access log never records the query string: the customer's links carry the order token there."""

import logging

import pytest
from channels.testing import HttpCommunicator, WebsocketCommunicator

from project.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)


def access_lines(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "paywatch.access"]


async def test_http_requests_are_logged_without_the_query_string(make_order, caplog) -> None:
    from asgiref.sync import sync_to_async

    order = await sync_to_async(make_order)()
    caplog.set_level("INFO", logger="paywatch.access")
    communicator = HttpCommunicator(application, "GET", f"/orders/{order.number}/status?t={order.access_token}",
                                    headers=[(b"host", b"127.0.0.1")])
    response = await communicator.get_response()
    await communicator.wait()
    assert response["status"] == 200
    (line,) = access_lines(caplog)
    assert (line.method, line.path, line.status) == ("GET", f"/orders/{order.number}/status", 200)
    assert line.bytes == len(response["body"]) and line.duration_ms >= 0
    assert order.access_token not in line.getMessage() + str(vars(line))


async def test_websockets_are_logged_on_close_without_the_token(make_order, caplog) -> None:
    from asgiref.sync import sync_to_async

    order = await sync_to_async(make_order)()
    caplog.set_level("INFO", logger="paywatch.access")
    communicator = WebsocketCommunicator(application, f"/ws/orders/{order.number}/?t={order.access_token}",
                                         headers=[(b"origin", b"http://127.0.0.1")])
    connected, _ = await communicator.connect()
    assert connected
    await communicator.receive_json_from(timeout=5)
    await communicator.disconnect()
    (line,) = access_lines(caplog)
    assert (line.method, line.path, line.status) == ("WS", f"/ws/orders/{order.number}/", 101)
    assert order.access_token not in line.getMessage() + str(vars(line))
