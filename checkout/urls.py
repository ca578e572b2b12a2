from django.urls import path

from checkout import views, webhook
from realtime import sse

app_name = "checkout"

urlpatterns = [
    path("", views.shop, name="shop"),
    path("checkout/", views.checkout, name="checkout"),
    path("orders/<str:number>/", views.order_page, name="order"),
    path("orders/<str:number>/status", views.order_status, name="order-status"),
    path("orders/<str:number>/refresh", views.order_refresh, name="order-refresh"),
    path("orders/<str:number>/events", sse.order_events, name="order-events"),
    path("payments/midtrans/notification", webhook.midtrans_notification, name="midtrans-notification"),
]
