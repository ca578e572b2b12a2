"""Fixtures for the checkout tests: Midtrans faked at the HTTP session of checkout.gateway."""

import json
from collections.abc import Callable
from typing import Any

import pytest
import requests

from checkout import gateway


class FakeMidtrans:
    """Stands in for the pooled session midtransclient calls: answers each request with a set body."""

    def __init__(self) -> None:
        self.status_code = 200
        self.body: Any = {}
        self.calls: list[tuple[str, str]] = []
        self.answer_for: Callable[[str, str], tuple[int, Any]] | None = None

    def answer(self, body: Any, status_code: int = 200) -> None:
        """Answer every request with ``body`` (any JSON value, or raw bytes) and ``status_code``."""
        self.body, self.status_code, self.answer_for = body, status_code, None

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        self.calls.append((method.upper(), url))
        status, body = self.answer_for(method, url) if self.answer_for else (self.status_code, self.body)
        response = requests.Response()
        response.status_code = status
        response._content = body if isinstance(body, bytes) else json.dumps(body).encode()
        response.headers["Content-Type"] = "application/json"
        response.url = url
        return response


@pytest.fixture
def fake_midtrans(monkeypatch: pytest.MonkeyPatch) -> FakeMidtrans:
    """Point this thread's Midtrans clients at a fake session (restored after the test)."""
    fake = FakeMidtrans()
    for client in gateway._clients():
        monkeypatch.setattr(client.http_client, "http_client", fake)
    return fake
