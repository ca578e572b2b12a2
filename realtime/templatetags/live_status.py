"""What the waiting page shows for a payment: one view state per situation the customer is in.

``static/checkout/order.js`` maps statuses the same way (``viewState``) when a
change arrives; the labels live here only and reach the script through the
template's ``data-label`` attributes.
"""

from django import template

register = template.Library()

# view state -> the words in the aria-live status box
LABELS = {
    "pending": "Waiting for your payment",
    "challenge": "Payment under review",
    "failed": "Payment failed",
    "paid": "Paid: we are processing your order",
    "expired": "Payment time ran out",
    "cancelled": "Order cancelled",
    "refunded": "Payment refunded",
}


def view_state(payment_status: str, order_status: str) -> str:
    """Return the view state for a payment and its order (the order decides once it has ended)."""
    if order_status == "processing":
        return "paid"
    if order_status in ("expired", "cancelled", "refunded"):
        return order_status
    if payment_status in ("challenge", "failed"):
        return payment_status
    return "pending"


@register.simple_tag
def payment_view_state(payment_status: str, order_status: str) -> str:
    return view_state(payment_status, order_status)


@register.simple_tag
def view_label(state: str) -> str:
    return LABELS.get(state, state)
