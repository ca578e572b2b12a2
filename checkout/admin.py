"""Admin: orders and payments with their event timeline; check with Midtrans now; approve, deny, cancel, refund."""

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from checkout import actions as payment_actions
from checkout import services
from checkout.errors import GatewayError
from checkout.models import EventSource, Order, Payment, PaymentEvent, Product, Refund
from checkout.states import PaymentAction, actions_for

# What each action's confirmation page says it will do.
ACTION_TEXT = {
    PaymentAction.APPROVE: "Accept this challenged card payment at Midtrans: it becomes paid.",
    PaymentAction.DENY: "Deny this challenged card payment at Midtrans: the attempt fails; the order stays payable.",
    PaymentAction.CANCEL: "Cancel this payment at Midtrans: the order is cancelled and can no longer be paid.",
    PaymentAction.REFUND: "Refund money of this paid payment at Midtrans (all that remains unless an amount is given).",
}


class PaymentEventInline(admin.TabularInline):
    model = PaymentEvent
    fields = ("id", "created_at", "source", "transaction_status", "fraud_status", "signature_valid",
              "status_before", "status_after", "version_after", "outcome", "detail")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("-id",)
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class PaymentInline(admin.StackedInline):
    model = Payment
    readonly_fields = ("status", "version", "amount", "buyer_fee", "currency", "payment_type", "transaction_status",
                       "fraud_status", "va_number", "expires_at", "paid_at", "last_checked_at", "next_check_at")
    fields = readonly_fields
    can_delete = False
    extra = 0


@admin.action(description="Check with Midtrans now")
def check_with_midtrans(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    payments = queryset if queryset.model is Payment else Payment.objects.filter(order__in=queryset)
    for payment in payments.select_related("order"):
        try:
            result = services.payment_check_now(payment=payment, source=EventSource.ADMIN)
        except GatewayError as exc:
            modeladmin.message_user(request, f"{payment.order.number}: {exc.message}", messages.ERROR)
        else:
            modeladmin.message_user(
                request, f"{payment.order.number}: {result.outcome} ({result.status_before} → {result.status_after})"
            )


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ("number", "status", "gross_amount", "currency", "customer_email", "created_at")
    list_filter = ("status", "created_at")
    search_fields = ("number", "customer_email")
    readonly_fields = ("number", "status", "gross_amount", "currency", "items", "created_at", "updated_at")
    exclude = ("access_token",)
    inlines = [PaymentInline]
    actions = [check_with_midtrans]


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


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    list_display = ("order", "status", "version", "amount", "buyer_fee", "payment_type", "transaction_status",
                    "next_check_at")
    list_filter = ("status", "payment_type", "events__source")
    search_fields = ("order__number", "midtrans_transaction_id", "va_number")
    readonly_fields = [f.name for f in Payment._meta.fields]
    inlines = [RefundInline, PaymentEventInline]
    actions = [check_with_midtrans]
    change_form_template = "admin/checkout/payment/change_form.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("order").distinct()

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view(self.payment_action_view)
        return [path("<int:object_id>/actions/<str:action>/", view, name="checkout_payment_action"),
                *super().get_urls()]

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        payment = self.get_object(request, object_id)
        offered = actions_for(payment.status, payment.order.status) if payment else []
        return super().change_view(request, object_id, form_url, {
            **(extra_context or {}),
            "payment_actions": [(action, reverse("admin:checkout_payment_action", args=[payment.pk, action]))
                                for action in offered] if payment and self.has_change_permission(request, payment)
            else [],
        })

    def payment_action_view(self, request: HttpRequest, object_id: int, action: str) -> HttpResponse:
        """Show the confirmation of an action (GET); do it and go back to the payment (POST)."""
        payment = self.get_object(request, str(object_id))
        if payment is None or action not in PaymentAction.values:
            raise Http404("No such payment or action.")
        if not self.has_change_permission(request, payment):
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


@admin.register(PaymentEvent)
class PaymentEventAdmin(admin.ModelAdmin):
    list_display = ("id", "created_at", "order_number", "source", "transaction_status", "signature_valid", "outcome")
    list_filter = ("source", "outcome", "signature_valid")
    search_fields = ("order_number",)
    readonly_fields = [f.name for f in PaymentEvent._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("sku", "name", "price")
