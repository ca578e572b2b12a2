"""Admin: orders and payments with their event timeline; check with Midtrans now."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from checkout import services
from checkout.errors import GatewayError
from checkout.models import EventSource, Order, Payment, PaymentEvent, Product


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
    readonly_fields = ("status", "version", "amount", "currency", "payment_type", "transaction_status",
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


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    list_display = ("order", "status", "version", "amount", "payment_type", "transaction_status", "next_check_at")
    list_filter = ("status", "payment_type", "events__source")
    search_fields = ("order__number", "midtrans_transaction_id", "va_number")
    readonly_fields = [f.name for f in Payment._meta.fields]
    inlines = [PaymentEventInline]
    actions = [check_with_midtrans]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("order").distinct()


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
