"""Start a real daphne on the test database against a Redis of the test's choosing (often a broken one)."""

import sys
from pathlib import Path

from paywatch_dev.servers import ServerProcess, free_port, tcp_ready
from paywatch_dev.stack import ROOT, SERVER_KEY
from tests.conftest import database_url_of


def start_daphne(log_dir: Path, redis_url: str, **env: str) -> ServerProcess:
    """Start daphne on a free port; ready once it accepts connections (its /healthz may well be 503)."""
    from django.db import connection

    port = free_port()
    process_env = {
        "DATABASE_URL": database_url_of(connection.settings_dict), "REDIS_URL": redis_url,
        # DEBUG is off: the deploy checks want real-looking values.
        "MIDTRANS_SERVER_KEY": SERVER_KEY, "SECRET_KEY": "test-secret-" + "k" * 50,
        "ALLOWED_HOSTS": "127.0.0.1,localhost", "PYTHONPATH": str(ROOT), **env,
    }
    args = [sys.executable, "-m", "daphne", "--access-log", "/dev/null", "-b", "127.0.0.1", "-p", str(port),
            "project.asgi:application"]
    return ServerProcess(f"daphne-{port}", args, log_dir, url=f"http://127.0.0.1:{port}",
                         ready=tcp_ready("127.0.0.1", port), env=process_env, cwd=ROOT, port=port).start()
