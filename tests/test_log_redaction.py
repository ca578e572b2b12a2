"""No log line ever carries an order token, whatever answer the request got (project/logging.py)."""

import json
import logging
import sys
import threading
import time
import uuid

import pytest
import requests
from django.test import RequestFactory

from project.logging import JsonFormatter

TOKEN = "Qx7mZ2kPp4Lr9VtB3nHc8WjYa5Ud1EfG"  # the shape of secrets.token_urlsafe(24)


def formatted(record: logging.LogRecord) -> str:
    return JsonFormatter().format(record)


def record(msg: str = "Forbidden", *, exc_info=None, **extra) -> logging.LogRecord:
    made = logging.LogRecord("django.request", logging.WARNING, __file__, 1, msg, None, exc_info)
    made.__dict__.update(extra)
    return made


def test_the_request_object_is_logged_as_method_and_path_only() -> None:
    request = RequestFactory().post(f"/orders/INV1/refresh?t={TOKEN}")
    line = json.loads(formatted(record(f"Forbidden (CSRF cookie not set.): {request.path}",
                                       request=request, status_code=403)))
    assert line["request"] == "POST /orders/INV1/refresh"
    assert line["status_code"] == 403 and line["message"].endswith("/orders/INV1/refresh")


@pytest.mark.parametrize("text", [
    f"GET /orders/INV1/?t={TOKEN}",
    f"/orders/INV1/status?x=1&t={TOKEN}&y=2",
    f"b't={TOKEN}'",  # a websocket scope's query string
    f"/admin/login/?next=%2Forders%2FINV1%2F%3Ft%3D{TOKEN}",
])
def test_a_token_anywhere_in_the_line_is_redacted(text) -> None:
    try:
        raise ValueError(f"boom at {text}")
    except ValueError:
        exc_info = sys.exc_info()
    line = formatted(record(f"Internal Server Error: {text}", exc_info=exc_info, url=text, scope={"q": text}))
    assert TOKEN not in line
    assert line.count("[redacted]") == 4
    assert "Internal Server Error" in line and "boom at" in line


# --- against a real daphne ------------------------------------------------------------------------------------


def wait_for_line(path, needle: str, timeout: float = 10.0) -> None:
    """Wait until a log file holds needle (the access log line is written just after the answer is sent)."""
    deadline = time.monotonic() + timeout
    while needle not in path.read_text(errors="replace"):
        assert time.monotonic() < deadline, f"{needle!r} never reached {path}"
        threading.Event().wait(0.05)


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_no_answer_writes_the_token_to_any_log(stack) -> None:
    """429, 503, 405, CSRF 403 and 404 on token-bearing URLs, then every Paywatch log is grepped."""
    limited, unavailable = stack.checkout(), stack.checkout()
    web = stack.web_url
    session = requests.Session()
    session.get(limited.page_url, timeout=10).raise_for_status()
    ajax = {"Accept": "application/json", "X-CSRFToken": session.cookies["csrftoken"]}

    def refresh(checkout) -> int:
        url = f"{web}/orders/{checkout.number}/refresh?t={checkout.token}"
        return session.post(url, headers=ajax, timeout=15).status_code

    assert refresh(limited) == 200
    assert refresh(limited) == 429
    stack.sim_config(error_rate=1.0, error_mode="html502")
    try:
        assert refresh(unavailable) == 503
    finally:
        stack.sim_config(error_rate=0.0)
    refresh_url = f"{web}/orders/{limited.number}/refresh?t={limited.token}"
    assert requests.get(refresh_url, timeout=10).status_code == 405
    assert requests.post(refresh_url, headers={"Accept": "application/json"}, timeout=10).status_code == 403
    assert requests.get(f"{web}/orders/{limited.number}/nope?t={limited.token}", timeout=10).status_code == 404
    assert requests.get(f"{web}/orders/INV-NONE/?t={limited.token}", timeout=10).status_code == 404
    marker = f"/log-marker-{uuid.uuid4().hex}"
    assert requests.get(web + marker, timeout=10).status_code == 404
    wait_for_line(stack.web.log_path, f"GET {marker} 404")

    logs = {path.name: path.read_text(errors="replace") for path in stack.paywatch_logs()}
    written = "\n".join(logs.values())
    # The answers were logged (so the grep below looks at real lines), and none of them holds a token.
    for logged in ("Too Many Requests", "Service Unavailable", "Method Not Allowed", "Forbidden (CSRF", "Not Found"):
        assert f'"message": "{logged}' in written, logged
    for token in (limited.token, unavailable.token):
        leaking = [f"{name}: {line}" for name, text in logs.items() for line in text.splitlines() if token in line]
        assert leaking == []
