"""``/metrics``, behind a bearer token when METRICS_TOKEN is set."""

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django_prometheus.exports import ExportToDjangoView


def metrics(request: HttpRequest) -> HttpResponse:
    """Export the Prometheus metrics; 403 without ``Authorization: Bearer <METRICS_TOKEN>`` when one is set."""
    expected = settings.METRICS_TOKEN
    if expected:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        # compare_digest: the time taken must not tell how much of a guess was right.
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected.encode()):
            return HttpResponseForbidden("A valid metrics token is required.\n", content_type="text/plain")
    return ExportToDjangoView(request)
