"""MidtransTransport alone, against a stdlib HTTP server in this process: what midtransclient relies on."""

import gzip
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from checkout.transport import MidtransTransport
from paywatch_dev.servers import free_port


class Recorder(BaseHTTPRequestHandler):
    """Answers by path; records each request line and its headers on the server."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self.server.seen.append((self.requestline, self.headers))  # case-insensitive
        self.server.ports.append(self.client_address[1])
        if self.path.endswith("/hang"):
            self.server.release.wait(5)
            return
        if self.path.endswith("/moved"):
            self._send(302, b"", {"Location": "/v2/elsewhere"})
        elif self.path.endswith("/latin"):
            self._send(200, "café".encode("latin-1"))
        elif self.path.endswith("/gzip"):
            self._send(200, gzip.compress(b'{"status_code": "200"}'), {"Content-Encoding": "gzip"})
        else:
            self._send(200, json.dumps({"status_code": "200", "path": self.path}).encode())

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in {"Content-Type": "application/json", "Content-Length": str(len(body)),
                           **(headers or {})}.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    httpd.daemon_threads = True
    httpd.seen, httpd.ports, httpd.release = [], [], threading.Event()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.release.set()
    httpd.shutdown()
    httpd.server_close()


def url(server: ThreadingHTTPServer, path: str) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}{path}"


def test_a_call_sends_the_key_as_basic_auth_and_reads_json(server) -> None:
    transport = MidtransTransport((2, 2))
    answer = transport.request("get", url(server, "/v2/INV-1/status"), auth=requests.auth.HTTPBasicAuth("SB-key", ""),
                               params={"a": "b c"}, headers={"accept": "application/json"}, proxies={},
                               allow_redirects=True)
    assert answer.status_code == 200 and answer.json()["path"] == "/v2/INV-1/status?a=b+c"
    line, headers = server.seen[-1]
    assert headers["Authorization"] == "Basic U0Ita2V5Og==" and headers["accept"] == "application/json"


def test_a_gzipped_answer_is_decoded(server) -> None:
    assert MidtransTransport((2, 2)).request("get", url(server, "/gzip")).json() == {"status_code": "200"}


def test_a_redirect_is_not_followed_with_the_key(server) -> None:
    answer = MidtransTransport((2, 2)).request("get", url(server, "/v2/X/moved"),
                                               auth=requests.auth.HTTPBasicAuth("SB-key", ""))
    assert answer.status_code == 302 and len(server.seen) == 1
    with pytest.raises(json.JSONDecodeError):  # what midtransclient catches: "not JSON"
        answer.json()


def test_a_body_that_is_not_utf8_is_not_json_rather_than_a_crash(server) -> None:
    answer = MidtransTransport((2, 2)).request("get", url(server, "/latin"))
    assert "caf" in answer.text
    with pytest.raises(json.JSONDecodeError):
        answer.json()


def test_connections_are_kept_alive_across_calls_and_threads(server) -> None:
    transport = MidtransTransport((2, 2))
    for _ in range(3):
        thread = threading.Thread(target=lambda: transport.request("get", url(server, "/v2/X/status")))
        thread.start()
        thread.join()
    assert len(server.ports) == 3 and len(set(server.ports)) == 1  # one connection, reused by three threads


def test_failures_raise_what_requests_would(server) -> None:
    with pytest.raises(requests.ConnectionError):
        MidtransTransport((2, 2)).request("get", f"http://127.0.0.1:{free_port()}/v2/X/status")
    with pytest.raises(requests.ReadTimeout):
        MidtransTransport((2, 0.2)).request("get", url(server, "/v2/X/hang"))


def test_a_proxy_from_the_environment_gets_the_calls_with_its_credentials(server, monkeypatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://shop:s3cret@127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("NO_PROXY", "")
    transport = MidtransTransport((2, 2), base_urls=("http://api.midtrans.example",))
    transport.request("get", "http://api.midtrans.example/v2/X/status")
    line, headers = server.seen[-1]
    assert line.startswith("GET http://api.midtrans.example/v2/X/status ")  # a proxy request: the absolute URL
    assert headers["Proxy-Authorization"] == "Basic c2hvcDpzM2NyZXQ="
    # What is kept to show (README, logs) names the proxy, not its password.
    assert transport.proxies == {"http://api.midtrans.example": f"http://127.0.0.1:{server.server_address[1]}"}


def test_a_socks_proxy_is_refused_with_a_clear_error(monkeypatch) -> None:
    from django.core.exceptions import ImproperlyConfigured

    monkeypatch.setenv("HTTPS_PROXY", "socks5://127.0.0.1:1080")
    monkeypatch.setenv("NO_PROXY", "")
    with pytest.raises(ImproperlyConfigured, match="socks5"):
        MidtransTransport((2, 2), base_urls=("https://api.midtrans.example",))
