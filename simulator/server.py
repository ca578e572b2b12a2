"""The HTTP server: ``http.server`` turning each request into a Request for the route table and writing its Response."""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from simulator.app import Simulator
from simulator.routes import ROUTES
from simulator.web import Request, Router


class SimulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sim: Simulator, router: Router) -> None:
        super().__init__(address, RequestHandler)
        self.sim = sim
        self.router = router


class RequestHandler(BaseHTTPRequestHandler):
    server: SimulatorServer
    protocol_version = "HTTP/1.1"
    server_version = "MidtransSimulator/1.0"
    # The headers and the body leave in two writes: with Nagle on, the body waits for the client's delayed
    # ACK of the headers, which added 40 ms to every answer on a kept-alive connection.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        sys.stderr.write(f"{self.log_date_time_string()} {format % args}\n")

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self.log_message("%s %s %s", self.command, self.path, code)

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._serve()

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        self._serve()

    def _serve(self) -> None:
        # The body is read before answering, whatever the route, so a kept-alive connection stays in step.
        length = int(self.headers.get("Content-Length") or 0)
        parts = urlsplit(self.path)
        request = Request(
            method=self.command, path=parts.path, headers=self.headers,
            query={k: v[-1] for k, v in parse_qs(parts.query).items()},
            body=self.rfile.read(length) if length else b"",
            server_address="{}:{}".format(*self.server.server_address[:2]),
        )
        try:
            response = self.server.router(self.server.sim, request)
            if response is None:
                self.close_connection = True
                return
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for key, value in response.headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            pass


def make_server(host: str, port: int, sim: Simulator) -> SimulatorServer:
    """Bind the HTTP server (port 0 picks a free port)."""
    return SimulatorServer((host, port), sim, ROUTES)
