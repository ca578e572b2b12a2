"""Admin pages beyond the model pages: delivery health, and re-applying a failed notification."""

from django.contrib import messages
from django.contrib.admin import ModelAdmin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme

from checkout import admin_selectors
from checkout.models import EventOutcome, PaymentEvent

# Who may re-apply an event: events are read-only records, so the model's change permission
# means "may act on it" here, as it does for the payment actions.
REAPPLY_PERMISSION = "checkout.change_paymentevent"


def delivery_health_view(request: HttpRequest, model_admin: ModelAdmin) -> HttpResponse:
    """Show how notifications arrive and apply, how the reconcile keeps up, and what needs a person."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    health = admin_selectors.delivery_health(now=timezone.now())
    return TemplateResponse(request, "admin/checkout/delivery_health.html", {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": "Delivery health",
        "health": health,
        "grace": admin_selectors.stuck_grace(),
        "may_reapply": request.user.has_perm(REAPPLY_PERMISSION),
        "duration_text": admin_selectors.duration_text,
    })


def event_reapply_view(request: HttpRequest, model_admin: ModelAdmin, object_id: int) -> HttpResponse:
    """Re-apply one failed notification (POST only) and go back where the button was."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if not request.user.has_perm(REAPPLY_PERMISSION):
        raise PermissionDenied
    event = PaymentEvent.objects.filter(pk=object_id).first()
    if event is None:
        raise Http404("No such event.")
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        back = reverse("admin:checkout_paymentevent_change", args=[event.pk])
    if not admin_selectors.event_reapplicable(event, now=timezone.now()):
        model_admin.message_user(request, f"Event #{event.pk} is {event.outcome}: only a verified notification "
                                          f"that failed to apply can be re-applied.", messages.ERROR)
        return HttpResponseRedirect(back)
    outcome = event_reapply(event=event)
    event.refresh_from_db()
    if outcome == "no_permit":
        model_admin.message_user(request, f"Event #{event.pk} not re-applied: the Midtrans calls/s budget is "
                                          f"spent right now; try again.", messages.WARNING)
    elif outcome == EventOutcome.ERROR:
        lines = event.detail.strip().splitlines()
        model_admin.message_user(request, f"Event #{event.pk} re-applied: it failed again "
                                          f"({lines[-1] if lines else 'no detail'}).", messages.ERROR)
    else:
        model_admin.message_user(request, f"Event #{event.pk} re-applied: {outcome} "
                                          f"({event.status_before or '—'} → {event.status_after or '—'}).",
                                 messages.SUCCESS)
    return HttpResponseRedirect(back)


def event_reapply(*, event: PaymentEvent) -> str:
    """Re-apply a stored notification now with the reconcile's own mechanism; return its outcome.

    It goes through ``reconcile.services.notification_reapply`` (the one
    writer, the attempt counted on the event's NotificationRetry), under a
    one-call run so that it respects the shared calls-per-second ceiling.
    """
    from reconcile import conf
    from reconcile.runner import Run
    from reconcile.services import notification_reapply

    run = Run(budget_seconds=conf.call_timeout_seconds() + 5.0, max_calls_per_second=conf.max_calls_per_second(),
              concurrency=1)
    return notification_reapply(event=event, run=run)
