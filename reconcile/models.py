"""What the reconcile remembers between runs."""

from django.db import models

from checkout.models import PaymentEvent


class NotificationRetry(models.Model):
    """How often the reconcile has re-applied a stored notification that failed to apply."""

    event = models.OneToOneField(PaymentEvent, on_delete=models.CASCADE, related_name="retry")
    attempts = models.PositiveIntegerField(default=0)
    last_outcome = models.CharField(max_length=20, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"event #{self.event_id}: {self.attempts} attempt(s), {self.last_outcome or '-'}"
