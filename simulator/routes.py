"""Every URL the simulator answers: (method, path pattern, handler), first match wins."""

from simulator import ACTIONS
from simulator import handlers as h
from simulator.web import Router

ROUTES = Router([
    ("GET", r"^/healthz/?$", h.healthz),
    ("GET", r"^/$", h.dashboard),
    # Snap and the Core API, as midtransclient calls them.
    ("POST", r"^/snap/v1/transactions/?$", h.snap_create),
    ("POST", r"^/v2/charge/?$", h.core_charge),
    ("GET", r"^/v2/token/?$", h.core_token),
    ("GET", r"^/v2/(?P<kind>gopay|qris)/(?P<id>[^/]+)/qr-code/?$", h.qr_code),
    ("GET", r"^/v2/gopay/(?P<id>[^/]+)/deeplink/?$", h.gopay_deeplink),
    ("GET", r"^/v2/(?P<id>.+)/status/b2b/?$", h.core_status_b2b),
    ("GET", r"^/v2/(?P<id>.+)/status/?$", h.core_status),
    ("POST", r"^/v2/(?P<id>.+)/(?P<action>cancel|expire|refund|approve|deny)/?$", h.core_action),
    # The payment page at redirect_url.
    ("GET", r"^/snap/v2/vtweb/(?P<token>[^/]+)/?$", h.page),
    ("POST", r"^/snap/v2/vtweb/(?P<token>[^/]+)/(?P<step>choose|pay|card)/?$", h.page_post),
    # The control API (tests, the CLI and the dashboard drive transactions with it).
    ("GET", r"^/sim/config/?$", h.config_get),
    ("POST", r"^/sim/config/?$", h.config_post),
    ("POST", r"^/sim/reset/?$", h.reset),
    ("GET", r"^/sim/orders/?$", h.orders_list),
    ("GET", r"^/sim/orders/(?P<id>.+?)/?$", h.order_get),
    ("POST", rf"^/sim/orders/(?P<id>.+)/(?P<action>{'|'.join(ACTIONS)})/?$", h.order_action),
])
