"""Settings, read from the environment with defaults that run on a laptop.

The defaults give the embedded mode: SQLite, in-memory channel layer, the engine
inside the web process. Setting REDIS_URL and DATABASE_URL selects scale-out mode.
"""

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from fleet.env import env, envbool, envint, envlist
from fleet.secret_key import secret_key
from stations.engine import id_tokens

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env("FLEET_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = envbool("DJANGO_DEBUG", False)
REDIS_URL = env("REDIS_URL")
ALLOWED_HOSTS = envlist("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = envlist("DJANGO_CSRF_TRUSTED_ORIGINS")

# Not "daphne": it would load Twisted (24 MB) into every engine worker; the web process
# runs Daphne itself (manage.py runfleet, or the daphne command).
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "stations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "fleet.login_limit.LoginRateLimitMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "fleet.urls"

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

WSGI_APPLICATION = None
ASGI_APPLICATION = "fleet.asgi.application"

DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL", f"sqlite:///{VAR_DIR / 'fleet.sqlite3'}"),
        conn_max_age=envint("DATABASE_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded mode writes from the engine while the admin reads: WAL lets them overlap.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        init_command="PRAGMA journal_mode=WAL;", transaction_mode="IMMEDIATE", timeout=20
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"

# The REST API (/api/v1/): tokens for machines, the session (with CSRF) for browsers.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # First: its WWW-Authenticate header makes a request without credentials a 401.
        "stations.api.auth.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "COERCE_DECIMAL_TO_STRING": False,
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "OCPP Fleet Simulator API",
    "DESCRIPTION": "Stations, their commands, the fleet and load-test runs. Authenticate with "
    "`Authorization: Bearer <token>` (tokens are created in the admin, API tokens).",
    "VERSION": "1",
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Requests and answers differ (write-only secrets, read-only state): two components.
    "COMPONENT_SPLIT_REQUEST": True,
    # The docs page loads Swagger UI from this app's static files, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # No badge from the public validator service.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
}

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
    # Shared by the web processes: the login limit counts failures across them.
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                          "LOCATION": REDIS_URL,
                          "OPTIONS": {"socket_timeout": 2, "socket_connect_timeout": 2}}}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Failed logins allowed per username and client address within the window (seconds),
# four times as many per address (fleet.login_limit).
FLEET_LOGIN_FAILURES = envint("FLEET_LOGIN_FAILURES", 5)
FLEET_LOGIN_WINDOW = envint("FLEET_LOGIN_WINDOW", 300)

# How stations validate OCPP messages; load tests may turn it off to save CPU.
FLEET_SCHEMA_VALIDATION = envbool("FLEET_SCHEMA_VALIDATION", True)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("FLEET_LOG_LEVEL", "INFO")},
    "loggers": {
        # The ocpp library logs every frame at INFO; stations log what matters themselves.
        "ocpp": {"level": "WARNING"},
        "websockets": {"level": "WARNING"},
    },
}

# -- the fleet runtime -----------------------------------------------------------------
# "embedded": the engine runs inside the web process (no Redis); "distributed": Celery
# engine workers run shards, coordinated through Redis.
FLEET_MODE = env("FLEET_MODE", "distributed" if REDIS_URL else "embedded")
SECRET_KEY = secret_key(VAR_DIR, scale_out=FLEET_MODE != "embedded", debug=DEBUG)
FLEET_SHARD_SIZE = envint("FLEET_SHARD_SIZE", 2500)
FLEET_RAMP_PER_SECOND = float(env("FLEET_RAMP_PER_SECOND", "200"))
FLEET_PUBLISH_INTERVAL = float(env("FLEET_PUBLISH_INTERVAL", "0.3"))
FLEET_LEASE_TTL = envint("FLEET_LEASE_TTL", 15)
# A holder stops sending this long before its lease could lapse; a takeover waits TTL + it.
FLEET_LEASE_MARGIN = float(env("FLEET_LEASE_MARGIN", str(max(1.0, FLEET_LEASE_TTL / 5))))
if not 0 < FLEET_LEASE_MARGIN < FLEET_LEASE_TTL / 2:
    raise ImproperlyConfigured("FLEET_LEASE_MARGIN must be above 0 and below half of "
                               f"FLEET_LEASE_TTL ({FLEET_LEASE_TTL} s)")
# How stations come back after their engine process was killed: "power-loss" (boot, the
# cut sessions end with PowerLoss) or "connection-loss" (they go on, as after a lost
# connection). A clean stop (SIGTERM, a fenced shard) always goes on.
FLEET_CRASH_RECOVERY = env("FLEET_CRASH_RECOVERY", "power-loss")
if FLEET_CRASH_RECOVERY not in ("power-loss", "connection-loss"):
    raise ImproperlyConfigured("FLEET_CRASH_RECOVERY must be power-loss or connection-loss, "
                               f"not {FLEET_CRASH_RECOVERY!r}")
FLEET_RECONCILE_SECONDS = float(env("FLEET_RECONCILE_SECONDS", "5"))
FLEET_STOP_TIMEOUT = float(env("FLEET_STOP_TIMEOUT", "10"))
# Open files an engine process keeps for everything but its stations' connections.
FLEET_FD_RESERVE = envint("FLEET_FD_RESERVE", 512)
# OCPP frames kept per station in the database's message log (the station page shows it).
FLEET_FRAME_LOG = envint("FLEET_FRAME_LOG", 100)
# Seconds between an engine worker's writes of its Prometheus samples to Redis (scale-out).
FLEET_METRICS_INTERVAL = float(env("FLEET_METRICS_INTERVAL", "5"))
FLEET_ENGINE_QUEUE = "engine"
# The scenario library: load tests take scenarios from this folder (or the database) only.
FLEET_SCENARIO_DIR = Path(env("FLEET_SCENARIO_DIR", str(BASE_DIR / "scenarios")))
# idTokens the dashboard offers: RFID card UIDs (ISO14443), as strict CSMSs want them.
# The sandbox CSMS rejects the ones it is told to (0BADC0DE shows the rejection path).
FLEET_DEMO_ID_TOKENS = envlist("FLEET_DEMO_ID_TOKENS",
                               "04A1B2C3,04B2C3D4,04C3D4E5F60718,0BADC0DE")
FLEET_SANDBOX_REJECTED_TOKENS = envlist("FLEET_SANDBOX_REJECTED_TOKENS", "0BADC0DE")
for _token in FLEET_DEMO_ID_TOKENS:
    if _problem := id_tokens.problem("ISO14443", _token):
        raise ImproperlyConfigured(f"FLEET_DEMO_ID_TOKENS: {_token!r}: {_problem}")

CELERY_BROKER_URL = env("CELERY_BROKER_URL", REDIS_URL or "memory://")
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ACKS_LATE = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ROUTES = {
    "stations.run_shard": {"queue": FLEET_ENGINE_QUEUE},
    "stations.run_load_part": {"queue": FLEET_ENGINE_QUEUE},
    "stations.reconcile_shards": {"queue": "control"},
}
CELERY_BEAT_SCHEDULE = {
    "reconcile-shards": {"task": "stations.reconcile_shards",
                         "schedule": FLEET_RECONCILE_SECONDS},
}
