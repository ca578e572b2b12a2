"""Settings read from the environment: where Midtrans calls go by default."""

import subprocess
import sys

import pytest


def midtrans_urls(**env: str) -> list[str]:
    code = ("import django; from django.conf import settings; django.setup(); "
            "print(settings.MIDTRANS['CORE_API_URL']); print(settings.MIDTRANS['SNAP_API_URL'])")
    clean = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "project.settings", **env}
    out = subprocess.run([sys.executable, "-c", code], env=clean, capture_output=True, text=True, check=True)
    return out.stdout.split()


@pytest.mark.parametrize(("env", "core"), [
    ({}, "http://127.0.0.1:8900"),
    ({"MIDTRANS_SERVER_KEY": "SB-Mid-server-abc"}, "https://api.sandbox.midtrans.com"),
    ({"MIDTRANS_SERVER_KEY": "Mid-server-abc", "MIDTRANS_IS_PRODUCTION": "true"}, "https://api.midtrans.com"),
    ({"MIDTRANS_SERVER_KEY": "SB-Mid-server-abc", "MIDTRANS_CORE_API_URL": "http://127.0.0.1:9/"},
     "http://127.0.0.1:9"),
])
def test_midtrans_base_urls_follow_the_key_unless_set(env, core) -> None:
    urls = midtrans_urls(**env)
    assert urls[0] == core
    assert urls[1].endswith("/snap/v1")
