"""Requests, responses and the route table: the HTTP vocabulary the handlers speak, with no server in it."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.message import Message
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote

from simulator.snap import INVALID_JSON

if TYPE_CHECKING:
    from simulator.app import Simulator


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]  # the last value of each parameter
    headers: Message
    body: bytes
    server_address: str  # host:port, for a request without a Host header

    @property
    def base_url(self) -> str:
        """Return the base URL the client used: redirect_url and actions point back there."""
        return f"http://{self.headers.get('Host') or self.server_address}"

    def form(self) -> dict[str, Any]:
        """Return a JSON object or form body as a dict (empty when absent or invalid)."""
        if not self.body:
            return {}
        if "application/x-www-form-urlencoded" in (self.headers.get("Content-Type") or ""):
            return {k: v[-1] for k, v in parse_qs(self.body.decode("utf-8", "replace")).items()}
        try:
            data = json.loads(self.body)
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    def json(self) -> Any:
        """Return the JSON body: None when it is missing or ``null``, INVALID_JSON when it cannot be parsed."""
        if not self.body.strip():
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return INVALID_JSON

    def basic_auth_user(self) -> str | None:
        """Return the user name of Basic auth (Midtrans's server key; the password is unused)."""
        header = self.headers.get("Authorization") or ""
        if not header.startswith("Basic "):
            return None
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[0]


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = "text/plain"
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, data: Any) -> Response:
    return Response(status, json.dumps(data).encode(), "application/json")


def html_response(status: int, text: str) -> Response:
    return Response(status, text.encode(), "text/html; charset=utf-8")


def redirect(location: str, status: int = 303) -> Response:
    return Response(status, headers={"Location": location})


# A handler gets the simulator, the request and the path's named groups (URL-decoded).
# None means: hang up without answering (an injected timeout).
Handler = Callable[..., Response | None]


class Router:
    """Route a request by (method, path pattern) to the first handler that matches both."""

    def __init__(self, routes: Sequence[tuple[str, str, Handler]]) -> None:
        self.routes = [(method, re.compile(pattern), handler) for method, pattern, handler in routes]

    def __call__(self, sim: Simulator, request: Request) -> Response | None:
        """Answer with the matching handler; 405 when only another method matches the path, else 404."""
        path_known = False
        for method, pattern, handler in self.routes:
            match = pattern.match(request.path)
            if match is None:
                continue
            if method == request.method:
                return handler(sim, request, **{k: unquote(v) for k, v in match.groupdict().items()})
            path_known = True
        if path_known:
            return json_response(405, {"status_code": "405", "status_message": "Method not allowed"})
        return json_response(404, {"status_code": "404", "status_message": "Not found"})
