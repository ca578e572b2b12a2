from django.urls import path

from realtime.consumers import OrderStatusConsumer

websocket_urlpatterns = [
    path("ws/orders/<str:number>/", OrderStatusConsumer.as_asgi()),
]
