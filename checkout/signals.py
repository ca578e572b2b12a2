"""Signals of the checkout app."""

from django.dispatch import Signal

# Sent once per real status change, after the transaction commits, only by
# checkout.services.payment_apply_observation. Keyword arguments:
# payment_id, order_number, order_status, payment_status, version, source,
# event_id.
payment_status_changed = Signal()
