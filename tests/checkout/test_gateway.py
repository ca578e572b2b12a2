"""The gateway against the simulator as a real process: timeouts, pooling, errors translated."""

import pytest

from checkout import gateway
from checkout.errors import GatewayRejected, GatewayUnavailable, TransactionNotFound

pytestmark = pytest.mark.e2e


@pytest.fixture
def sim(stack):
    yield stack
    stack.sim_config(error_rate=0.0, status_latency_ms=0)


def snap_params(order_id: str, amount: int = 10_000) -> dict:
    return {"transaction_details": {"order_id": order_id, "gross_amount": amount},
            "item_details": [{"id": "x", "name": "X", "price": amount, "quantity": 1}]}


def new_id() -> str:
    import secrets

    return f"GW-{secrets.token_hex(6)}"


def test_snap_create_then_status_as_a_typed_observation(sim) -> None:
    order_id = new_id()
    created = gateway.snap_create(snap_params(order_id))
    assert created.token and created.redirect_url.startswith(sim.sim_url)
    with pytest.raises(TransactionNotFound):
        gateway.transaction_status(order_id)  # no method chosen yet: Midtrans says 404
    sim.sim("settle", order_id, notify="drop")
    observation = gateway.transaction_status(order_id)
    assert (observation.order_id, observation.transaction_status, str(observation.gross_amount)) == (
        order_id, "settlement", "10000.00")


def test_reused_order_id_and_bad_key_are_rejections(sim, settings) -> None:
    order_id = new_id()
    gateway.snap_create(snap_params(order_id))
    gateway.snap_create(snap_params(order_id))  # no payment attempted yet: Midtrans issues another token
    sim.sim("pending", order_id, notify="drop")
    with pytest.raises(GatewayRejected) as taken:
        gateway.snap_create(snap_params(order_id))
    assert taken.value.extra["order_id_taken"] is True
    settings.MIDTRANS = {**settings.MIDTRANS, "SERVER_KEY": "SB-Mid-server-WRONG"}
    with pytest.raises(GatewayRejected):
        gateway.snap_create(snap_params(new_id()))


@pytest.mark.parametrize("mode", ["500", "503", "429", "html502"])
def test_outages_are_unavailable(sim, mode) -> None:
    sim.sim_config(error_rate=1.0, error_mode=mode)
    with pytest.raises(GatewayUnavailable):
        gateway.transaction_status(new_id())


def test_a_hanging_midtrans_times_out(sim, settings) -> None:
    settings.MIDTRANS = {**settings.MIDTRANS, "READ_TIMEOUT": 0.5}
    sim.sim_config(error_rate=1.0, error_mode="timeout")
    with pytest.raises(GatewayUnavailable, match="in time"):
        gateway.transaction_status(new_id())


def test_unreachable_midtrans_is_unavailable(settings) -> None:
    from paywatch_dev.servers import free_port

    settings.MIDTRANS = {**settings.MIDTRANS, "CORE_API_URL": f"http://127.0.0.1:{free_port()}"}
    with pytest.raises(GatewayUnavailable, match="unreachable"):
        gateway.transaction_status("INV-NOWHERE")


def test_every_thread_shares_one_pooled_transport_with_a_timeout(settings) -> None:
    import threading

    from checkout.transport import MidtransTransport

    snap, core = gateway._clients()
    transport = core.http_client.http_client
    assert isinstance(transport, MidtransTransport) and transport is snap.http_client.http_client
    assert (transport.timeout.connect_timeout, transport.timeout.read_timeout) == (
        settings.MIDTRANS["CONNECT_TIMEOUT"], settings.MIDTRANS["READ_TIMEOUT"])
    # A reconcile chunk's threads are new ones each time: they must reuse the pooled connections.
    seen = []
    thread = threading.Thread(target=lambda: seen.append(gateway._clients()))
    thread.start()
    thread.join()
    assert seen == [(snap, core)]
    settings.MIDTRANS = {**settings.MIDTRANS, "READ_TIMEOUT": 1.5}
    assert gateway._clients()[1].http_client.http_client.timeout.read_timeout == 1.5  # new settings, new clients


@pytest.mark.django_db(transaction=True)
def test_checkout_renumbers_an_order_whose_number_midtrans_already_knows(sim, make_order) -> None:
    from checkout.models import Order
    from checkout.services import orders as order_services

    taken = new_id()
    # e.g. left at Midtrans by a database that was reset, and paid or tried: only then is the number taken
    gateway.snap_create(snap_params(taken))
    sim.sim("pending", taken, notify="drop")
    order = make_order()
    Order.objects.filter(pk=order.pk).update(number=taken)
    order.refresh_from_db()

    payment = order_services.order_checkout_snap(order=order)

    order.refresh_from_db()
    assert order.number != taken and payment.redirect_url
    assert sim.sim_order(order.number)["finish_url"].endswith(f"/orders/{order.number}/?t={order.access_token}")


def test_the_transport_takes_the_proxy_and_ca_bundle_from_the_environment_once(monkeypatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.shop.example:3128")
    monkeypatch.setenv("NO_PROXY", "app.sandbox.midtrans.com")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/shop/ca.pem")
    from checkout.transport import MidtransTransport

    transport = MidtransTransport((1, 1), base_urls=("https://api.sandbox.midtrans.com",
                                                     "https://app.sandbox.midtrans.com/snap"))
    assert transport.proxies == {"https://api.sandbox.midtrans.com": "http://proxy.shop.example:3128"}
    assert transport.ca_certs == "/etc/shop/ca.pem"


def test_calls_go_through_the_proxy_resolved_at_start(sim, settings, monkeypatch) -> None:
    """A proxy named in the environment when the clients are made carries the calls; NO_PROXY still exempts a host."""
    from urllib.parse import urlsplit

    host = urlsplit(sim.sim_url).hostname
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "")
    monkeypatch.setattr(gateway, "_made", {})
    with pytest.raises(GatewayUnavailable, match="unreachable"):
        gateway.transaction_status(new_id())  # the call went to the (dead) proxy, not to the simulator
    monkeypatch.setenv("NO_PROXY", host)
    monkeypatch.setattr(gateway, "_made", {})
    with pytest.raises(TransactionNotFound):
        gateway.transaction_status(new_id())  # NO_PROXY honoured: straight to the simulator


def test_a_forked_child_makes_its_own_transport() -> None:
    """django-q2 forks its workers: a child must not write on the sockets its parent pooled."""
    import os

    parent = gateway._clients()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report whether it got new clients, then leave at once
        os.write(write, b"new" if gateway._clients()[1] is not parent[1] else b"same")
        os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 8) == b"new"
    assert gateway._clients() is parent  # the parent keeps its own
