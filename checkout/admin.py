"""Admin: orders, payments and events as read-only records; actions are the only way to change them.

Actions: check with Midtrans now; approve, deny, cancel, refund (each behind
a confirmation, offered by ``states.actions_for``); re-apply a failed
notification. The model's *change* permission means "may use the actions":
nobody may edit, add or delete what only the system writes.
"""

import json
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from checkout import actions as payment_actions
from checkout import admin_selectors, admin_views, selectors
from checkout.display import rupiah
from checkout.errors import GatewayError
from checkout.models import EventSource, Order, Payment, PaymentEvent, Product, Refund
from checkout.services import payments as payment_services
from checkout.states import PaymentAction, PaymentStatus, actions_for

# What each action's confirmation page says it will do.
ACTION_TEXT = {
    PaymentAction.APPROVE: "Accept this challenged card payment at Midtrans: it becomes paid.",
    PaymentAction.DENY: "Deny this challenged card payment at Midtrans: the attempt fails; the order stays payable.",
    PaymentAction.CANCEL: "Cancel this payment at Midtrans: the order is cancelled and can no longer be paid.",
    PaymentAction.REFUND: "Refund money of this paid payment at Midtrans (all that remains unless an amount is given).",
}
ADMIN_CSS = {"all": ("checkout/admin.css",)}


def pretty_body(text: str) -> str:
    """Return a stored body indented when it is JSON, else as it is."""
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except (ValueError, TypeError):
        return text


class ReadOnlyRecordAdmin(admin.ModelAdmin):
    """A record only the system writes: viewed here, never added, edited or deleted; actions change it."""

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_act_permission(self, request: HttpRequest) -> bool:
        """Return whether the user may use the actions: the model's change permission, as auth grants it."""
        codename = get_permission_codename("change", self.opts)
        return request.user.has_perm(f"{self.opts.app_label}.{codename}")


class PaymentInline(admin.StackedInline):
    model = Payment
    readonly_fields = ("status", "version", "amount", "buyer_fee", "currency", "payment_type", "transaction_status",
                       "fraud_status", "va_number", "expires_at", "paid_at", "last_checked_at", "next_check_at")
    fields = readonly_fields
    can_delete = False
    extra = 0
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.action(description="Check with Midtrans now", permissions=["act"])
def check_with_midtrans(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    payments = queryset if queryset.model is Payment else Payment.objects.filter(order__in=queryset)
    for payment in payments.select_related("order"):
        try:
            result = payment_services.payment_ask_midtrans(payment=payment, source=EventSource.ADMIN)
        except GatewayError as exc:
            modeladmin.message_user(request, f"{payment.order.number}: {exc.message}", messages.ERROR)
        else:
            modeladmin.message_user(
                request, f"{payment.order.number}: {result.outcome} ({result.status_before} → {result.status_after})"
            )


@admin.register(Order)
class OrderAdmin(ReadOnlyRecordAdmin):
    list_display = ("number", "status", "amount", "customer_email", "created_at")
    list_filter = ("status", "created_at")
    search_fields = ("number", "customer_email")
    readonly_fields = ("number", "status", "gross_amount", "currency", "items", "customer_name", "customer_email",
                       "created_at", "updated_at")
    fields = readonly_fields
    inlines = [PaymentInline]
    actions = [check_with_midtrans]

    class Media:
        css = ADMIN_CSS

    @admin.display(description="amount", ordering="gross_amount")
    def amount(self, order: Order) -> str:
        return rupiah(order.gross_amount)


class RefundInline(admin.TabularInline):
    model = Refund
    fields = ("number", "amount", "reason", "status", "refund_key", "midtrans_refund_id", "detail", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class RefundForm(forms.Form):
    """The refund's confirmation: an amount (empty: all that remains), a reason."""

    amount = forms.DecimalField(required=False, min_value=1, decimal_places=0,
                                help_text="whole rupiah; empty refunds all that remains")
    reason = forms.CharField(required=False, max_length=255)
    again = forms.BooleanField(required=False, label="Refund this amount again",
                               help_text="only to refund an amount that was already refunded once more")


class AttentionFilter(admin.SimpleListFilter):
    """The payments a person should look at, one kind at a time."""

    title = "needs a look"
    parameter_name = "attention"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("stuck", "stuck (check overdue)"), ("overdue", "past expiry"), ("challenge", "challenge"),
                ("mismatch", "amount mismatch"), ("paid_after_close", "paid after close")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        now = timezone.now()
        chosen = {
            "stuck": lambda: admin_selectors.payments_stuck(now=now),
            "overdue": lambda: admin_selectors.payments_overdue(now=now),
            "challenge": lambda: Payment.objects.filter(status=PaymentStatus.CHALLENGE),
            "mismatch": selectors.payments_amount_mismatch,
            "paid_after_close": selectors.payments_paid_after_close,
        }.get(self.value() or "")
        return queryset if chosen is None else queryset.filter(pk__in=chosen().values("pk"))


@admin.register(Payment)
class PaymentAdmin(ReadOnlyRecordAdmin):
    # Few, short columns: the list fits 1280 px beside the navigation and the filters (the method is a
    # filter and on the payment's page; as a column, "bank_transfer" alone would push it over). buyer_fee
    # is the model's field (a ModelAdmin method cannot take a field's name), kept for the buyer-fee tests.
    list_display = ("order", "status", "amount_text", "buyer_fee", "age", "midtrans", "next_check")
    list_filter = (AttentionFilter, "status", "payment_type", "events__source")
    list_select_related = ("order",)
    search_fields = ("order__number", "midtrans_transaction_id", "va_number")
    # Newest first by Django's default (-pk): an explicit ordering would widen the age header with sort icons.
    fieldsets = (
        (None, {"fields": ("order", "status", "version", "amount", "buyer_fee", "currency")}),
        ("Midtrans", {"fields": ("transaction_status", "fraud_status", "midtrans_transaction_id", "payment_type",
                                 "bank", "va_number", "bill_key", "biller_code", "payment_code", "store",
                                 "snap_token", "redirect_url")}),
        ("Times", {"fields": ("created_at", "expires_at", "paid_at", "last_checked_at", "next_check_at",
                              "last_refresh_at", "updated_at")}),
    )
    readonly_fields = [f.name for f in Payment._meta.fields]
    inlines = [RefundInline]
    actions = [check_with_midtrans]
    change_form_template = "admin/checkout/payment/change_form.html"

    class Media:
        css = ADMIN_CSS

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("order").distinct()

    @admin.display(description="amount", ordering="amount")
    def amount_text(self, payment: Payment) -> str:
        return rupiah(payment.amount).replace(" ", "\u00a0")  # "Rp" never alone on a line

    @admin.display(description="age", ordering="created_at")
    def age(self, payment: Payment) -> str:
        return admin_selectors.duration_text(timezone.now() - payment.created_at)

    @admin.display(description="Midtrans", ordering="transaction_status")
    def midtrans(self, payment: Payment) -> str:
        """Show the last status Midtrans gave and how long ago it was last asked."""
        asked = ("asked " + admin_selectors.duration_text(timezone.now() - payment.last_checked_at) + " ago"
                 if payment.last_checked_at else "never asked")
        # "partial_refund" may break after its underscore, so the column stays narrow.
        status = format_html_join(mark_safe("_<wbr>"), "{}", ((part,) for part in
                                                              (payment.transaction_status or "—").split("_")))
        return format_html('{}<br><span class="pw-quiet">{}</span>', status, asked)

    @admin.display(description="next check", ordering="next_check_at")
    def next_check(self, payment: Payment) -> str:
        now, due = timezone.now(), payment.next_check_at
        if due is None or not admin_selectors.payment_is_checked(payment):
            return "—"  # a webhook that closes a payment leaves its old next_check_at: no check follows
        if due > now:
            return "in " + admin_selectors.duration_text(due - now)
        late = now - due
        css = "pw-late" if late > admin_selectors.stuck_grace() else "pw-quiet"
        return format_html('<span class="{}">due {} ago</span>', css, admin_selectors.duration_text(late))

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view(self.payment_action_view)
        return [path("<int:object_id>/actions/<str:action>/", view, name="checkout_payment_action"),
                *super().get_urls()]

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        payment = self.get_object(request, object_id)
        offered = actions_for(payment.status, payment.order.status) if payment else []
        explanation = admin_selectors.payment_explanation(payment, now=timezone.now()) if payment else None
        return super().change_view(request, object_id, form_url, {
            **(extra_context or {}),
            "payment_actions": [(action, reverse("admin:checkout_payment_action", args=[payment.pk, action]))
                                for action in offered] if payment and self.has_act_permission(request) else [],
            "explanation": explanation,
            "last_answer_body": pretty_body(explanation.last_answer.raw_body)
            if explanation and explanation.last_answer else "",
        })

    def payment_action_view(self, request: HttpRequest, object_id: int, action: str) -> HttpResponse:
        """Show the confirmation of an action (GET); do it and go back to the payment (POST)."""
        payment = self.get_object(request, str(object_id))
        if payment is None or action not in PaymentAction.values:
            raise Http404("No such payment or action.")
        if not self.has_act_permission(request):
            raise PermissionDenied
        back = reverse("admin:checkout_payment_change", args=[payment.pk])
        if PaymentAction(action) not in actions_for(payment.status, payment.order.status):
            self.message_user(request, f"{payment.order.number}: {action} is not possible for a payment that is "
                                       f"{payment.status} (order {payment.order.status})", messages.ERROR)
            return HttpResponseRedirect(back)
        form = RefundForm(request.POST or None) if action == PaymentAction.REFUND else None
        if request.method == "POST" and request.POST.get("confirm") == "yes" and (form is None or form.is_valid()):
            try:
                result = self._do(payment, action, form)
            except (payment_actions.ActionRefused, GatewayError) as exc:
                self.message_user(request, exc.message, messages.ERROR)
            else:
                level = messages.SUCCESS if result.transition is not None or not result.sent else messages.WARNING
                self.message_user(request, result.message, level)
            return HttpResponseRedirect(back)
        return TemplateResponse(request, "admin/checkout/payment/action_confirm.html", {
            **self.admin_site.each_context(request),
            "opts": self.model._meta, "original": payment, "payment": payment, "action": action,
            "title": f"{action.capitalize()} payment {payment.order.number}?", "description": ACTION_TEXT[action],
            "form": form, "remaining": payment_actions.refund_remaining(payment), "back": back,
        })

    @staticmethod
    def _do(payment: Payment, action: str, form: forms.Form | None) -> payment_actions.ActionResult:
        if action == PaymentAction.REFUND:
            assert form is not None
            amount: Decimal | None = form.cleaned_data["amount"]
            return payment_actions.payment_refund(payment_id=payment.pk, amount=amount,
                                                  reason=form.cleaned_data["reason"], again=form.cleaned_data["again"])
        service = {PaymentAction.APPROVE: payment_actions.payment_approve,
                   PaymentAction.DENY: payment_actions.payment_deny,
                   PaymentAction.CANCEL: payment_actions.payment_cancel}[PaymentAction(action)]
        return service(payment_id=payment.pk)


@admin.action(description="Re-apply (failed notifications only)", permissions=["act"])
def reapply_events(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    now = timezone.now()
    chosen = list(queryset.filter(pk__in=admin_selectors.events_failed(now=now).values("pk")))
    if len(chosen) < queryset.count():
        modeladmin.message_user(request, f"{queryset.count() - len(chosen)} selected event(s) are not failed "
                                         f"notifications: left as they are.", messages.WARNING)
    for event in chosen:
        outcome = admin_views.event_reapply(event=event)
        level = messages.ERROR if outcome in ("error", "no_permit") else messages.SUCCESS
        modeladmin.message_user(request, f"Event #{event.pk} re-applied: {outcome}", level)


@admin.register(PaymentEvent)
class PaymentEventAdmin(ReadOnlyRecordAdmin):
    list_display = ("id", "created_at", "order_number", "source", "transaction_status", "signature_valid", "outcome")
    list_filter = ("source", "outcome", "signature_valid")
    search_fields = ("order_number",)
    fieldsets = (
        (None, {"fields": ("payment", "order_number", "source", "created_at", "processed_at", "outcome", "detail")}),
        ("What it said", {"fields": ("transaction_status", "fraud_status", "signature_valid", "status_before",
                                     "status_after", "version_after")}),
        ("As received", {"fields": ("body", "raw_size", "raw_truncated", "client_ip", "request_headers")}),
    )
    readonly_fields = [f.name for f in PaymentEvent._meta.fields] + ["body", "request_headers"]
    actions = [reapply_events]
    change_form_template = "admin/checkout/paymentevent/change_form.html"

    class Media:
        css = ADMIN_CSS

    @admin.display(description="raw body")
    def body(self, event: PaymentEvent) -> str:
        return format_html('<pre class="pw-raw">{}</pre>', pretty_body(event.raw_body))

    @admin.display(description="headers")
    def request_headers(self, event: PaymentEvent) -> str:
        return format_html('<pre class="pw-raw">{}</pre>', json.dumps(event.headers, indent=2, ensure_ascii=False))

    def get_urls(self) -> list[URLPattern]:
        health = self.admin_site.admin_view(lambda request: admin_views.delivery_health_view(request, self))
        reapply = self.admin_site.admin_view(
            lambda request, object_id: admin_views.event_reapply_view(request, self, object_id))
        return [path("health/", health, name="checkout_delivery_health"),
                path("<int:object_id>/reapply/", reapply, name="checkout_paymentevent_reapply"),
                *super().get_urls()]

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        event = self.get_object(request, object_id)
        reapplicable = (event is not None and request.user.has_perm(admin_views.REAPPLY_PERMISSION)
                        and admin_selectors.event_reapplicable(event, now=timezone.now()))
        return super().change_view(request, object_id, form_url, {**(extra_context or {}),
                                                                  "reapplicable": reapplicable})


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("sku", "name", "price")
