from django.urls import path

from realtime.consumers import OrderStatusConsumer
from realtime.unavailable import CloseWhenUnavailable

websocket_urlpatterns = [
    path("ws/orders/<str:number>/", CloseWhenUnavailable(OrderStatusConsumer.as_asgi())),
]
