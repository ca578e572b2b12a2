"""Signals of the checkout app."""

from django.dispatch import Signal

# Sent after the transaction commits, only from checkout.services (its one
# locked writer), when a payment's status changes or a chosen method's details
# (a VA number, a payment code) first appear; each time with a new version.
# Keyword arguments: payment_id, order_number, order_status, payment_status,
# version, source, event_id, details. realtime.receivers relays it to the
# order's open pages.
payment_status_changed = Signal()
