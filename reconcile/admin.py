"""Admin: how often the reconcile re-applied each failed notification (schedules are django-q2's)."""

from django.contrib import admin
from django.http import HttpRequest

from reconcile.models import NotificationRetry

# "notification retrys" otherwise. Set here rather than in the model's Meta so that it
# needs no migration while reconcile/ is being reworked; move it to Meta with the next one.
NotificationRetry._meta.verbose_name_plural = "notification retries"


@admin.register(NotificationRetry)
class NotificationRetryAdmin(admin.ModelAdmin):
    """Read-only: only the reconcile (and a person's re-apply) writes these."""

    list_display = ("event", "attempts", "last_outcome", "last_attempt_at")
    list_filter = ("last_outcome",)
    list_select_related = ("event",)
    readonly_fields = ("event", "attempts", "last_outcome", "last_attempt_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
