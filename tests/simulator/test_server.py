"""The simulator's HTTP server itself (in this process: a unit test of simulator/server.py)."""

import socket
import threading

import requests

from simulator.app import Simulator
from simulator.server import RequestHandler, make_server


def test_answers_leave_without_waiting_for_the_clients_delayed_ack(monkeypatch) -> None:
    """Headers and body are two writes: with Nagle on, the body waited 40 ms for the ACK of the headers."""
    nodelay = []
    setup = RequestHandler.setup

    def recording_setup(handler: RequestHandler) -> None:
        setup(handler)
        nodelay.append(handler.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    monkeypatch.setattr(RequestHandler, "setup", recording_setup)
    server = make_server("127.0.0.1", 0, Simulator(server_key="SB-Mid-server-T", notify_url="http://127.0.0.1:9/"))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        answer = requests.get(f"http://127.0.0.1:{server.server_address[1]}/v2/NONE/status",
                              auth=("SB-Mid-server-T", ""), timeout=5)
    finally:
        server.shutdown()
        server.server_close()
    assert answer.json()["status_code"] == "404"
    assert nodelay and all(nodelay)
