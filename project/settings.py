"""Settings for Paywatch, read from the environment (12-factor).

Every variable has a default that works on a developer's machine: SQLite under
``var/``, Redis on localhost, the local Midtrans simulator on port 8900.
"""

import os
from pathlib import Path
from urllib.parse import urlsplit

import environ
from csp.constants import NONE, SELF

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
# Development defaults: they make a fresh clone run, and they are named here so
# that project/checks.py can refuse to start with any of them while DEBUG is off.
DEVELOPMENT_SECRET_KEY = "paywatch-insecure-development-key-change-me"
DEVELOPMENT_ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]
DEVELOPMENT_SERVER_KEY = "SB-Mid-server-LOCAL-SIMULATOR"
SECRET_KEY = env.str("SECRET_KEY", default=DEVELOPMENT_SECRET_KEY)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=DEVELOPMENT_ALLOWED_HOSTS)
# An explicit ALLOWED_HOSTS may equal the default list; only an unset one is a fallback.
ALLOWED_HOSTS_FROM_ENV = "ALLOWED_HOSTS" in os.environ
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "django_q",
    "django_prometheus",
    "csp",
    "project",
    "checkout",
    "realtime",
    "reconcile",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    # Above WhiteNoise, whose static answers skip every middleware below it.
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "project.middleware.PrivatePageHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The shop and the waiting page follow the browser's Accept-Language (Indonesian or English).
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Innermost but for the metrics, so it sees every view's exception first.
    "project.middleware.ServiceUnavailableMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

# The Midtrans webhook's own chain (checkout.gate routes it there): what a JSON answer to a server needs —
# metrics, the headers every answer carries, the 503 for a failing backing service. No session, locale,
# CSRF (the view is exempt), auth, messages, CSP or static files: the whole chain, built for pages, was
# 12.5 % of daphne's own time per notification (docs/benchmarks.md, "Compiled statements…").
WEBHOOK_MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "project.middleware.ServiceUnavailableMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "project.urls"
ASGI_APPLICATION = "project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'paywatch.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(exist_ok=True)  # git-ignored; a fresh clone has none
    # IMMEDIATE transactions take the write lock up front, so two concurrent
    # notifications queue on the busy timeout instead of failing mid-way;
    # WAL lets readers (the waiting page) proceed during a write.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": env.int("SQLITE_BUSY_TIMEOUT", default=20),
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    if DATABASES["default"].get("TEST") is None:
        # TEST_DATABASE_NAME lets two test runs share a checkout without sharing a database.
        DATABASES["default"]["TEST"] = {"NAME": env.str("TEST_DATABASE_NAME", default=str(VAR_DIR / "test.sqlite3"))}
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env.bool("DATABASE_POOL", default=True):
    # Daphne runs each request's sync code on a thread of its own, so a
    # persistent connection (CONN_MAX_AGE) is never reused and every request
    # paid a new PostgreSQL connection (~11% of a webhook's CPU, measured).
    # psycopg's pool (per process) hands them back on close instead. Size it
    # to what one process has in flight: WEBHOOK_MAX_IN_FLIGHT notifications
    # plus pages, sockets and health checks; the total over all processes
    # (WEB_CONCURRENCY × max + workers) must stay under PostgreSQL's
    # max_connections. A request that waits longer than the timeout for a
    # connection gets a 503 (OperationalError), never a 500.
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DATABASE_POOL_MIN_SIZE", default=2),
        "max_size": env.int("DATABASE_POOL_MAX_SIZE", default=20),
        "timeout": env.float("DATABASE_POOL_TIMEOUT", default=10.0),
    }

    from project.dbpool import forget_inherited_pools

    os.register_at_fork(after_in_child=forget_inherited_pools)

if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env.bool(
        "DATABASE_PREPARED_STATEMENTS", default=True):
    # Django binds parameters into the SQL text and prepares nothing, for
    # poolers in transaction mode (PgBouncer before 1.21). Paywatch talks to
    # PostgreSQL directly, through long-lived pooled sessions: a statement a
    # session has run 5 times (psycopg's default) is prepared, so PostgreSQL
    # parses and plans it once. A notification's six statements: 30% less
    # PostgreSQL CPU (docs/benchmarks.md, "Prepared statements").
    DATABASES["default"].setdefault("OPTIONS", {}).update(server_side_binding=True, prepare_threshold=5)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("id", "Bahasa Indonesia")]
LOCALE_PATHS = [BASE_DIR / "locale"]  # the .mo files are built by `make` (compilemessages), never committed
TIME_ZONE = "Asia/Jakarta"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# collectstatic writes here; in production nginx serves it (deploy/nginx).
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "staticfiles")))
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")

# pub/sub was measured faster than the core layer here (docs/benchmarks.md);
# CHANNEL_LAYER=core switches back. The host options defuse two redis-py 8
# traps (socket_timeout closing idle sockets; a 100-connection pool cap).
CHANNEL_LAYER = env.str("CHANNEL_LAYER", default="pubsub")
_layer_host = {"address": REDIS_URL, "socket_timeout": None, "max_connections": 10_000}
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": (
            "realtime.layers.ResilientRedisPubSubChannelLayer"
            if CHANNEL_LAYER == "pubsub"
            else "channels_redis.core.RedisChannelLayer"
        ),
        "CONFIG": {"hosts": [_layer_host]},
    },
}
if CHANNEL_LAYER != "pubsub":
    CHANNEL_LAYERS["default"]["CONFIG"].update(capacity=1000, expiry=60)

Q_CLUSTER = {
    "name": "paywatch",
    "workers": env.int("Q_WORKERS", default=2),
    "timeout": env.int("Q_TIMEOUT", default=240),
    "retry": env.int("Q_RETRY", default=300),
    "max_attempts": 1,
    "catch_up": False,
    "redis": REDIS_URL,
    "orm": None,
    "ack_failures": True,
    "label": "Django Q2",
    # Timeouts, backoff while Redis is down, and the heartbeat /healthz reads.
    "broker_class": "project.qbroker.ResilientRedis",
}

# With no key set, everything talks to the local simulator (python -m simulator).
# With a real key and no URLs, Midtrans's sandbox or production is meant.
_MIDTRANS_IS_PRODUCTION = env.bool("MIDTRANS_IS_PRODUCTION", default=False)
_MIDTRANS_SERVER_KEY = env.str("MIDTRANS_SERVER_KEY", default=DEVELOPMENT_SERVER_KEY)
if _MIDTRANS_SERVER_KEY == DEVELOPMENT_SERVER_KEY:
    # The simulator's port follows SIMULATOR_PORT (make run starts it there), so checkout sends customers to it.
    _SIMULATOR_URL = f"http://127.0.0.1:{env.int('SIMULATOR_PORT', default=8900)}"
    _CORE_URL, _SNAP_URL = _SIMULATOR_URL, f"{_SIMULATOR_URL}/snap/v1"
elif _MIDTRANS_IS_PRODUCTION:
    _CORE_URL, _SNAP_URL = "https://api.midtrans.com", "https://app.midtrans.com/snap/v1"
else:
    _CORE_URL, _SNAP_URL = "https://api.sandbox.midtrans.com", "https://app.sandbox.midtrans.com/snap/v1"
MIDTRANS = {
    "SERVER_KEY": _MIDTRANS_SERVER_KEY,
    "CLIENT_KEY": env.str("MIDTRANS_CLIENT_KEY", default="SB-Mid-client-LOCAL-SIMULATOR"),
    "IS_PRODUCTION": _MIDTRANS_IS_PRODUCTION,
    "CORE_API_URL": env.str("MIDTRANS_CORE_API_URL", default=_CORE_URL).rstrip("/"),
    "SNAP_API_URL": env.str("MIDTRANS_SNAP_API_URL", default=_SNAP_URL).rstrip("/"),
    "CONNECT_TIMEOUT": env.float("MIDTRANS_CONNECT_TIMEOUT", default=3.05),
    "READ_TIMEOUT": env.float("MIDTRANS_READ_TIMEOUT", default=10.0),
    "SNAP_EXPIRY_MINUTES": env.int("MIDTRANS_SNAP_EXPIRY_MINUTES", default=60 * 24),
}

PAYMENT_FALLBACK_SECONDS = env.int("PAYMENT_FALLBACK_SECONDS", default=30)
# The waiting page pings every ~this many seconds (±1/3); keep it under the
# proxy's idle timeout and under daphne's --ping-interval (60 in the Procfile).
WEBSOCKET_HEARTBEAT_SECONDS = env.int("WEBSOCKET_HEARTBEAT_SECONDS", default=30)
# Open websockets per order across all web processes; one more is closed with 4429.
WEBSOCKET_MAX_PER_ORDER = env.int("WEBSOCKET_MAX_PER_ORDER", default=20)
REFRESH_MIN_INTERVAL_SECONDS = env.int("REFRESH_MIN_INTERVAL_SECONDS", default=10)
RECONCILE_INTERVAL_MINUTES = env.int("RECONCILE_INTERVAL_MINUTES", default=5)
# Status calls in flight at once, and a ceiling on Midtrans calls per second (its limits are not published).
RECONCILE_CONCURRENCY = env.int("RECONCILE_CONCURRENCY", default=8)
RECONCILE_MAX_CALLS_PER_SECOND = env.float("RECONCILE_MAX_CALLS_PER_SECOND", default=50.0)
# While a waiting page is open on a payment Midtrans knows, ask Midtrans about it this often (at most
# once per payment per interval across every process; within the ceiling above). 0 turns it off.
WATCHED_CHECK_SECONDS = env.int("WATCHED_CHECK_SECONDS", default=30)
WEBHOOK_MAX_BODY_BYTES = env.int("WEBHOOK_MAX_BODY_BYTES", default=64 * 1024)
# Notifications handled at once per web process; one more is answered 503 + Retry-After at once
# (Midtrans resends it). Past the knee more concurrency only slows every answer (docs/benchmarks.md).
WEBHOOK_MAX_IN_FLIGHT = env.int("WEBHOOK_MAX_IN_FLIGHT", default=16)
# PostgreSQL connections a web process keeps open however quiet it is (project/dbpool.py's
# keep_web_floor): a full gate's worth, so that a sale's first second does not wait for new sessions.
WEB_DATABASE_POOL_MIN_SIZE = env.int("WEB_DATABASE_POOL_MIN_SIZE", default=WEBHOOK_MAX_IN_FLIGHT)
# A broadcast never holds its caller: it is handed to the process's sender loop, given up after this
# many seconds, and dropped (counted) when this many are pending; the heartbeat resync delivers it.
REALTIME_BROADCAST_TIMEOUT = env.float("REALTIME_BROADCAST_TIMEOUT", default=2.0)
REALTIME_BROADCAST_MAX_IN_FLIGHT = env.int("REALTIME_BROADCAST_MAX_IN_FLIGHT", default=1000)
# Events of closed payments, and events that never had one (forged, unknown order), are pruned after this.
EVENT_RETENTION_DAYS = env.int("EVENT_RETENTION_DAYS", default=90)
# When set, /metrics answers only `Authorization: Bearer <METRICS_TOKEN>` (project/metrics.py).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

# Headers for every answer (SecurityMiddleware, XFrameOptionsMiddleware); the
# token-bearing ones also get no-store (project/middleware.py). same-origin,
# not no-referrer: with no-referrer browsers send `Origin: null` on the page's
# own POSTs, which CSRF rejects; cross-origin links get no Referer either way.
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# The shop's form redirects to Snap's payment page, and form-action covers redirects.
_SNAP_ORIGIN = "{0.scheme}://{0.netloc}".format(urlsplit(MIDTRANS["SNAP_API_URL"]))
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],  # CSP3: 'self' covers ws:/wss: to the same host (the waiting page's socket)
        "form-action": [SELF, _SNAP_ORIGIN],
        "frame-ancestors": [NONE],
        "base-uri": [NONE],
        "object-src": [NONE],
    },
}

LOGGING_CONFIG = "project.logging.configure"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "project.logging.JsonFormatter"}},
    "filters": {"redis_outage": {"()": "project.qoutage.RedisOutageFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Replace Django's own plain-text console handler with the JSON one.
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.server": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
        # One line per Redis outage instead of several a second (project/qoutage.py).
        "django-q": {"filters": ["redis_outage"]},
    },
}

if not DEBUG:
    SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=PUBLIC_BASE_URL.startswith("https"))
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
CSRF_TRUSTED_ORIGINS = [PUBLIC_BASE_URL]
