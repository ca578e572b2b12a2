"""The customer's pages: the demo shop, checkout, the waiting page and its JSON."""

import logging
import math
from urllib.parse import urlencode

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from checkout import how_to_pay, metrics, selectors
from checkout.errors import GatewayError, GatewayUnavailable
from checkout.forms import CheckoutForm
from checkout.models import EventSource, Order, Product
from checkout.services import orders as order_services
from checkout.services import payments as payment_services

logger = logging.getLogger("paywatch.checkout")


@require_GET
def shop(request: HttpRequest) -> HttpResponse:
    """List the demo products."""
    products = Product.objects.order_by("price")
    return render(request, "checkout/shop.html", {"products": products, "form": CheckoutForm()})


@require_POST
def checkout(request: HttpRequest) -> HttpResponse:
    """Create the order and its Snap transaction, then send the customer to pay."""
    form = CheckoutForm(request.POST)
    if not form.is_valid():
        products = Product.objects.order_by("price")
        return render(request, "checkout/shop.html", {"products": products, "form": form}, status=400)
    order = order_services.order_create(items=form.items(), customer_name=form.cleaned_data["name"],
                                        customer_email=form.cleaned_data["email"])
    try:
        payment = order_services.order_checkout_snap(order=order)
    except GatewayError as exc:
        logger.warning("Snap transaction not created", extra={"order": order.number, "error": exc.message})
        return render(request, "checkout/gateway_error.html", {"order": order, "error": exc.message}, status=502)
    return redirect(payment.redirect_url)


def _customer_order(request: HttpRequest, number: str) -> Order:
    order = selectors.order_for_customer(number, request.GET.get("t"))
    if order is None:
        raise Http404("No such order.")
    return order


@require_GET
def order_page(request: HttpRequest, number: str) -> HttpResponse:
    """Render the waiting page; the script keeps it live."""
    order = _customer_order(request, number)
    snapshot = selectors.order_snapshot(order)
    return render(request, "checkout/order.html", {
        "order": order,
        "payment": order.payment,
        "snapshot": snapshot,
        "pay_methods": how_to_pay.methods_with_values(snapshot["details"]),
        "token": order.access_token,
        "fallback_seconds": settings.PAYMENT_FALLBACK_SECONDS,
        "heartbeat_seconds": settings.WEBSOCKET_HEARTBEAT_SECONDS,
        "refresh_message": request.GET.get("refreshed", ""),
    })


@require_GET
def order_status(request: HttpRequest, number: str) -> JsonResponse:
    """Return the status snapshot as JSON."""
    return JsonResponse(selectors.order_snapshot(_customer_order(request, number)))


@require_POST
def order_refresh(request: HttpRequest, number: str) -> HttpResponse:
    """Ask Midtrans now (rate-limited per order); JSON, or back to the page for a plain form."""
    order = _customer_order(request, number)
    # JSON unless the client prefers HTML (the no-JS form of a browser): no Accept, */* or a tie is JSON.
    wants_html = request.get_preferred_type(["application/json", "text/html"]) == "text/html"
    wait = payment_services.payment_refresh_claim(payment_id=order.payment.pk)
    if wait:
        metrics.refreshes.labels(result="limited").inc()
        return _refresh_answer(request, order, wants_html, 429,
                               _("Checked recently; try again in %(seconds)d s.") % {"seconds": math.ceil(wait)},
                               retry_after=math.ceil(wait))
    try:
        payment_services.payment_ask_midtrans(payment=order.payment, source=EventSource.REFRESH)
    except GatewayUnavailable as exc:
        metrics.refreshes.labels(result="unavailable").inc()
        return _refresh_answer(request, order, wants_html, 503,
                               _("Could not reach the payment gateway (%(error)s). Try again shortly.")
                               % {"error": exc.message})
    except GatewayError as exc:
        metrics.refreshes.labels(result="error").inc()
        return _refresh_answer(request, order, wants_html, 502,
                               _("The payment gateway refused: %(error)s") % {"error": exc.message})
    metrics.refreshes.labels(result="ok").inc()
    return _refresh_answer(request, order, wants_html, 200, _("Checked with the payment gateway just now."))


def _refresh_answer(
    request: HttpRequest, order: Order, wants_html: bool, status: int, message: str, retry_after: int | None = None
) -> HttpResponse:
    order.refresh_from_db()
    order.payment.refresh_from_db()
    if wants_html:
        query = urlencode({"refreshed": message})
        response: HttpResponse = redirect(f"{selectors.order_waiting_page_url(order, absolute=False)}&{query}")
    else:
        data = selectors.order_snapshot(order)
        if status != 200:
            data["error"] = message
        response = JsonResponse({**data, "message": message}, status=status)
    if retry_after:
        response["Retry-After"] = str(retry_after)
    return response
