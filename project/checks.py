"""System checks that keep production off development values.

With DEBUG off every management command (``qcluster`` included, and ``check
--deploy``) stops on these errors, and project/asgi.py runs them before daphne
serves anything: a missing key must stop the process, not fall back to the
simulator's public one, with which anyone can sign a settlement.
"""

from typing import Any

from django.conf import settings
from django.core import checks
from django.core.management.base import BaseCommand

SERVER_KEY = "paywatch.E001"
SECRET_KEY = "paywatch.E002"
ALLOWED_HOSTS = "paywatch.E003"

_DEVELOPMENT_SECRET_PREFIXES = ("django-insecure-", "paywatch-insecure-")


@checks.register(checks.Tags.security)
def production_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Return an error for each development value in force while DEBUG is off."""
    if settings.DEBUG:
        return []
    errors = []
    server_key = settings.MIDTRANS["SERVER_KEY"]
    if not server_key or server_key == settings.DEVELOPMENT_SERVER_KEY:
        errors.append(checks.Error(
            "MIDTRANS_SERVER_KEY is unset or the simulator's development key "
            f"({settings.DEVELOPMENT_SERVER_KEY}), which anyone can use to sign a notification.",
            hint="Set MIDTRANS_SERVER_KEY to your Midtrans server key, or DEBUG=1 for development.",
            id=SERVER_KEY,
        ))
    secret_key = settings.SECRET_KEY
    if not secret_key or secret_key == settings.DEVELOPMENT_SECRET_KEY \
            or secret_key.startswith(_DEVELOPMENT_SECRET_PREFIXES):
        errors.append(checks.Error(
            "SECRET_KEY is unset or a development value.",
            hint="Set SECRET_KEY to a long random value, e.g. "
                 "python -c 'import secrets; print(secrets.token_urlsafe(50))'.",
            id=SECRET_KEY,
        ))
    hosts = [host for host in settings.ALLOWED_HOSTS if host.strip()]
    if not settings.ALLOWED_HOSTS_FROM_ENV or not hosts or "*" in hosts:
        shown = "unset" if not settings.ALLOWED_HOSTS_FROM_ENV else repr(",".join(settings.ALLOWED_HOSTS))
        errors.append(checks.Error(
            f"ALLOWED_HOSTS is {shown}; it must name this site's host names, without '*'.",
            hint="Set ALLOWED_HOSTS, e.g. ALLOWED_HOSTS=shop.example.com.",
            id=ALLOWED_HOSTS,
        ))
    return errors


def refuse_to_start_on_errors() -> None:
    """Run the system checks as a management command does; raise SystemCheckError on any error."""
    BaseCommand().check()
