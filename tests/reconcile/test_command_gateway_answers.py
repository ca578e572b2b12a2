"""``payments check-status`` against a Midtrans that answers 200 with a JSON list: exit 3, no traceback."""

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import connection

from checkout.models import Payment
from paywatch_dev.stack import ROOT, SERVER_KEY
from tests.conftest import database_url_of

pytestmark = pytest.mark.django_db(transaction=True)


class _ListAnswers(BaseHTTPRequestHandler):
    """Answers every request with HTTP 200 and the JSON ``[]``."""

    def _answer(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"[]")

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def list_midtrans() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ListAnswers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_check_status_with_a_list_answer_exits_3_with_a_message_and_no_traceback(
    make_order, list_midtrans, redis_url
) -> None:
    order = make_order()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "project.settings", "DEBUG": "1",
           "DATABASE_URL": database_url_of(connection.settings_dict), "REDIS_URL": redis_url,
           "MIDTRANS_SERVER_KEY": SERVER_KEY, "MIDTRANS_CORE_API_URL": list_midtrans,
           "MIDTRANS_SNAP_API_URL": f"{list_midtrans}/snap/v1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "manage.py", "payments", "check-status", order.number], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 3, result.stderr[-2000:]
    assert "Midtrans is unavailable: Midtrans answered status with a body that is not a JSON object" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert Payment.objects.get(pk=order.payment.pk).status == "pending"
