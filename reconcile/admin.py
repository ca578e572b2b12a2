"""Admin: how often the reconcile re-applied each failed notification (schedules are django-q2's)."""

from django.contrib import admin
from django.http import HttpRequest

from reconcile.models import NotificationRetry


@admin.register(NotificationRetry)
class NotificationRetryAdmin(admin.ModelAdmin):
    list_display = ("event", "attempts", "last_outcome", "last_attempt_at")
    list_filter = ("last_outcome",)
    readonly_fields = ("event", "attempts", "last_outcome", "last_attempt_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
