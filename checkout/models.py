"""Orders, their payment, and the audit trail of everything that touched it."""

import secrets

from django.db import models

from checkout.states import OrderStatus, PaymentStatus


def new_access_token() -> str:
    """Return an unguessable per-order token for the customer's links."""
    return secrets.token_urlsafe(24)


class Product(models.Model):
    """A demo-shop product, priced in whole rupiah."""

    sku = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=120)
    price = models.PositiveIntegerField(help_text="IDR, whole rupiah")
    description = models.CharField(max_length=255, blank=True)

    def __str__(self) -> str:
        return self.name


class Order(models.Model):
    number = models.CharField(max_length=50, unique=True)
    access_token = models.CharField(max_length=64, default=new_access_token, editable=False)
    status = models.CharField(max_length=20, choices=OrderStatus.choices, default=OrderStatus.PENDING, db_index=True)
    gross_amount = models.DecimalField(max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3, default="IDR")
    items = models.JSONField(default=list, help_text="[{sku, name, price, quantity}]")
    customer_name = models.CharField(max_length=120, blank=True)
    customer_email = models.EmailField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.number


class Payment(models.Model):
    order = models.OneToOneField(Order, on_delete=models.PROTECT, related_name="payment")
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3, default="IDR")
    status = models.CharField(
        max_length=20, choices=PaymentStatus.choices, default=PaymentStatus.PENDING, db_index=True
    )
    version = models.PositiveIntegerField(default=1, help_text="bumped on every status change")

    snap_token = models.CharField(max_length=64, blank=True)
    redirect_url = models.URLField(max_length=500, blank=True)
    midtrans_transaction_id = models.CharField(max_length=64, blank=True)
    transaction_status = models.CharField(max_length=30, blank=True, help_text="last Midtrans status seen")
    fraud_status = models.CharField(max_length=20, blank=True)
    payment_type = models.CharField(max_length=30, blank=True)
    bank = models.CharField(max_length=30, blank=True)
    va_number = models.CharField(max_length=40, blank=True)
    bill_key = models.CharField(max_length=40, blank=True)
    biller_code = models.CharField(max_length=20, blank=True)
    payment_code = models.CharField(max_length=40, blank=True)
    store = models.CharField(max_length=30, blank=True)
    buyer_fee = models.DecimalField(
        max_digits=14, decimal_places=2, default=0,
        help_text="fee Midtrans charged the buyer on top of the amount (fee imposition)",
    )

    expires_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    next_check_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_refresh_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.order.number} ({self.status})"


class EventSource(models.TextChoices):
    WEBHOOK = "webhook"
    RECONCILE = "reconcile"
    REFRESH = "refresh"
    CLEANUP = "cleanup"
    ADMIN = "admin"
    CHECKOUT = "checkout"


class EventOutcome(models.TextChoices):
    RECEIVED = "received", "received (not applied yet)"
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    STALE = "stale"
    AMOUNT_MISMATCH = "amount_mismatch"
    INVALID_SIGNATURE = "invalid_signature"
    UNKNOWN_ORDER = "unknown_order"
    ERROR = "error"


class PaymentEvent(models.Model):
    """One input that touched (or tried to touch) a payment, stored before it is applied.

    The id is the monotonic event id; ``raw_body`` is kept verbatim so that a
    notification that failed to apply can be re-applied later. Bodies nobody
    vouches for (forged, unknown order, malformed) keep only their start and
    size: enough for forensics, bounded however many arrive.
    """

    payment = models.ForeignKey(Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="events")
    order_number = models.CharField(max_length=64, blank=True, db_index=True)
    source = models.CharField(max_length=20, choices=EventSource.choices, db_index=True)
    raw_body = models.TextField(blank=True, help_text="verbatim when verified; else its first 2 KiB")
    raw_size = models.PositiveIntegerField(null=True, blank=True, help_text="bytes received")
    raw_truncated = models.BooleanField(default=False)
    headers = models.JSONField(default=dict, blank=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    signature_valid = models.BooleanField(null=True)
    transaction_status = models.CharField(max_length=30, blank=True)
    fraud_status = models.CharField(max_length=20, blank=True)
    status_before = models.CharField(max_length=20, blank=True)
    status_after = models.CharField(max_length=20, blank=True)
    version_after = models.PositiveIntegerField(null=True, blank=True)
    outcome = models.CharField(
        max_length=20, choices=EventOutcome.choices, default=EventOutcome.RECEIVED, db_index=True
    )
    detail = models.TextField(blank=True, help_text="why it ended as it did; a traceback on error")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)  # the retention prunes by age
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["outcome", "signature_valid"])]

    def __str__(self) -> str:
        return f"#{self.pk} {self.source} {self.transaction_status or '-'} → {self.outcome}"


class RefundStatus(models.TextChoices):
    REQUESTED = "requested", "requested (Midtrans's answer not seen yet)"
    DONE = "done"
    REFUSED = "refused"


class Refund(models.Model):
    """One refund asked of Midtrans, with the ``refund_key`` that makes asking again safe.

    The row is written before the call: a command killed after Midtrans
    refunded but before the answer was stored leaves it ``requested``, and the
    next attempt at the same amount sends the same key, which Midtrans answers
    without refunding again.
    """

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    number = models.PositiveIntegerField(help_text="1 for the payment's first refund, 2 for the next…")
    refund_key = models.CharField(max_length=100, unique=True)
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    reason = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=20, choices=RefundStatus.choices, default=RefundStatus.REQUESTED)
    midtrans_refund_id = models.CharField(max_length=64, blank=True)
    detail = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["payment", "number"]
        constraints = [models.UniqueConstraint(fields=["payment", "number"], name="refund_number_per_payment")]

    def __str__(self) -> str:
        return f"{self.refund_key} {self.amount} ({self.status})"
