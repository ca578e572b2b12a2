"""Answers every page shares: private headers on token-bearing requests, and 503 when a backing service fails."""

import logging
from collections.abc import Callable

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers
from redis.exceptions import RedisError

logger = logging.getLogger("paywatch.unavailable")

# Seconds a client should wait before trying again; a locked SQLite or a
# restarting PostgreSQL is usually back within a few.
RETRY_AFTER_SECONDS = 5


class PrivatePageHeadersMiddleware:
    """Keep answers to requests that carry an order token (``?t=``) out of caches and Referer headers.

    Keyed on the query parameter rather than on the view, so that every
    token-bearing answer is covered: the page, its JSON, the refresh and its
    redirect, the event stream, and the 404 for a wrong token alike.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "t" in request.GET:
            add_never_cache_headers(response)  # no-cache, no-store, must-revalidate, private, max-age=0
            response["Referrer-Policy"] = "same-origin"
        return response


class ServiceUnavailableMiddleware:
    """Answer a clear 503 with Retry-After, never a 500, when the database or Redis fails under a view.

    JSON unless the client prefers HTML (a person's browser gets a small page).
    The webhook handles its own database errors before they get here.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, DatabaseError):
            service = "database"
        elif isinstance(exception, RedisError):
            service = "redis"
        else:
            return None
        # One line naming the cause; django.request adds its own "Service Unavailable" line.
        logger.warning("%s unavailable: %s", service, type(exception).__name__,
                       extra={"service": service, "error": str(exception)[:200], "path": request.path})
        message = "The service is briefly unavailable. Please try again in a few seconds."
        if request.get_preferred_type(["application/json", "text/html"]) == "text/html":
            response: HttpResponse = render(request, "unavailable.html", {"message": message}, status=503)
        else:
            response = JsonResponse({"error": message, "unavailable": service,
                                     "retry_after": RETRY_AFTER_SECONDS}, status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
