"""ASGI entry point: HTTP through Django, websockets through Channels."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

from project.handlers import get_asgi_application  # noqa: E402

# Django's ASGIHandler with the middleware chain entered once (project/handlers.py explains why).
django_asgi_app = get_asgi_application()

from project.dbpool import keep_web_floor  # noqa: E402

keep_web_floor()

from project.checks import refuse_to_start_on_errors  # noqa: E402

# daphne runs no system checks itself: a SystemCheckError here (say, the
# simulator's key with DEBUG off) stops it at import with a non-zero exit.
refuse_to_start_on_errors()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from checkout.gate import WebhookGate  # noqa: E402
from project.accesslog import AccessLogMiddleware  # noqa: E402
from project.gctune import tune_gc  # noqa: E402
from realtime.routing import websocket_urlpatterns  # noqa: E402

application = AccessLogMiddleware(
    ProtocolTypeRouter(
        {
            # Past the knee, a quick 503 for notifications before any thread or middleware (checkout/webhook.py).
            "http": WebhookGate(django_asgi_app, webhook_app=get_asgi_application(settings.WEBHOOK_MIDDLEWARE)),
            "websocket": AllowedHostsOriginValidator(URLRouter(websocket_urlpatterns)),
        }
    )
)

tune_gc()
