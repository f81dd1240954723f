"""Django settings for Task Delay Service.

Every deploy-specific value comes from the environment (see `.env.example`) with a safe
development default: SQLite, a Celery broker that needs no server, the console SMS provider.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from api.logs import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = BASE_DIR / (os.environ.get("DATA_DIR") or ".data")  # relative to the project


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "")
    return float(value) if value.strip() else default


def local_secret_key(data_dir: Path) -> str:
    """A development signing key: random, made on first run in the git-ignored data folder
    (mode 0600) and reused after, so tokens survive restarts and every process of one checkout
    (gunicorn workers, Celery) agrees. Created atomically: processes starting together all read
    the same complete key."""
    path = data_dir / "secret_key"
    try:
        key = path.read_text().strip()
    except FileNotFoundError:
        key = ""
    if key:
        return key
    import secrets

    data_dir.mkdir(parents=True, exist_ok=True)
    temporary = data_dir / f".secret_key.{os.getpid()}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(50))
    try:
        os.link(temporary, path)  # fails if another process made it first: use theirs
    except FileExistsError:
        pass
    finally:
        temporary.unlink()
    return path.read_text().strip()


DEBUG = env_bool("DJANGO_DEBUG", True)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is false.")
    SECRET_KEY = local_secret_key(DATA_DIR)

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "rest_framework_simplejwt",
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "api",
]

MIDDLEWARE = [
    "api.middleware.RequestObservabilityMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "Work.urls"
# Every API path answers with and without the trailing slash (routers match both), so
# CommonMiddleware must not redirect a POST to the slashed URL.
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

WSGI_APPLICATION = "Work.wsgi.application"
ASGI_APPLICATION = "Work.asgi.application"

DEFAULT_SQLITE_PATH = DATA_DIR / "db.sqlite3"
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{DEFAULT_SQLITE_PATH}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The API, the worker and beat share one SQLite file: WAL lets readers run beside the
    # single writer, the busy timeout and IMMEDIATE transactions turn "database is locked"
    # into a short wait instead of an error.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    if DATABASES["default"]["NAME"] == str(DEFAULT_SQLITE_PATH):
        DATA_DIR.mkdir(parents=True, exist_ok=True)
else:
    # A database that does not answer must not hang a worker that holds gateway outcomes to
    # write: connecting fails after this many seconds and the worker tries again.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", env_int("DATABASE_CONNECT_TIMEOUT", 5)
    )
    # Behind PgBouncer in transaction mode set this true: QuerySet.iterator() (Django's admin
    # and form choice fields use it) would open a server-side cursor, WITH HOLD outside a
    # transaction, which the pooler cannot carry to the next transaction. (Prepared statements
    # need nothing: Django binds client-side and sets psycopg's prepare_threshold to None.)
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = env_bool(
        "DATABASE_DISABLE_SERVER_SIDE_CURSORS", False
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("DJANGO_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT") or DATA_DIR / "static")
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns on every request otherwise
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Without collectstatic (tests, a quick `manage.py` shell) serve straight from the apps.
WHITENOISE_USE_FINDERS = True

# The largest request body the API reads (bytes); a bigger one is a 413 JSON answer.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("API_MAX_BODY_BYTES", 1024 * 1024)

# --- CORS: closed unless origins are listed; open to all only in DEBUG when asked for ---
CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS")
CORS_ALLOW_ALL_ORIGINS = DEBUG and env_bool("CORS_ALLOW_ALL_ORIGINS", False)

# --- REST framework ---
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.authentication.JWTAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "api.pagination.IdCursorPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "api.exceptions.json_exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["api.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["api.parsers.JSONParser"],
    # The token endpoints only (api/throttles.py): per client address and per username, in the
    # shared cache below, so every gunicorn worker counts the same attempts.
    "DEFAULT_THROTTLE_RATES": {
        "token_ip": os.environ.get("TOKEN_RATE_PER_IP") or "20/min",
        "token_username": os.environ.get("TOKEN_RATE_PER_USERNAME") or "10/min",
    },
    # Client addresses come from REMOTE_ADDR; behind N trusted proxies that append to
    # X-Forwarded-For, set TRUSTED_PROXY_COUNT=N.
    "NUM_PROXIES": env_int("TRUSTED_PROXY_COUNT", 0) or None,
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append(
        "rest_framework.renderers.BrowsableAPIRenderer"
    )

# How long a worker process trusts that a token's user still exists and is active before it
# reads the row again (api/authentication.py). 0: every request.
AUTH_USER_CACHE_SECONDS = env_int("AUTH_USER_CACHE_SECONDS", 5)

# Lifetimes are given in SECONDS.
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(seconds=env_int("ACCESS_TOKEN_LIFETIME", 3600)),
    "REFRESH_TOKEN_LIFETIME": timedelta(seconds=env_int("REFRESH_TOKEN_LIFETIME", 7 * 24 * 3600)),
    "SIGNING_KEY": SECRET_KEY,
    # Each refresh answers a new refresh token and blacklists the one used: a stolen refresh
    # token works once at most, and POST /api/token/blacklist/ logs out.
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
}

# --- Cache: shared by every process (throttle counters) ---
# CACHE_URL=redis://host:6379/1 in production; by default a folder under the data dir, which
# every gunicorn worker of one machine shares with no server.
CACHE_URL = os.environ.get("CACHE_URL", "")
if CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
    }
elif CACHE_URL:
    raise ImproperlyConfigured("CACHE_URL must be a redis:// URL (or unset for the file cache).")
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(DATA_DIR / "cache"),
        }
    }

SPECTACULAR_SETTINGS = {
    "TITLE": "Task Delay Service API",
    "DESCRIPTION": (
        "Campaign (mass SMS) service: clients, campaigns planned in each client's local time, "
        "messages and delivery stats. Get a token at `POST /api/token/` and send it as "
        "`Authorization: Bearer <access>`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "api.schema.document_error_responses",
    ],
    "ENUM_NAME_OVERRIDES": {
        "CampaignStatusEnum": "api.models.CampaignStatus",
        "MessageStatusEnum": "api.models.MessageStatus",
        "RunStatusEnum": "api.models.RunStatus",
    },
}

# --- Celery ---
# Default broker: kombu's filesystem transport, so `make run` needs no server.
BROKER_DIR = DATA_DIR / "broker"
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "") or "filesystem://"
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("in", "processed", "control"):
        (BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "in"),
        "data_folder_out": str(BROKER_DIR / "in"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND") or None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_WORKER_MAX_MEMORY_PER_CHILD = 200_000  # KiB: recycle a worker child past 200 MB

# --- Delivery engine ---
DISPATCH_INTERVAL_SECONDS = env_float("DISPATCH_INTERVAL_SECONDS", 60)
DISPATCH_BATCH_SIZE = env_int("DISPATCH_BATCH_SIZE", 500)
DISPATCH_TASK_SECONDS = env_float("DISPATCH_TASK_SECONDS", 30)
# A claimed message stays `sending` this long unless its worker renews the lease (it does, every
# third of it, while it works); a dead worker's unsent messages are back in the queue after it.
DISPATCH_LEASE_SECONDS = env_float("DISPATCH_LEASE_SECONDS", 30)
# Outcomes are written as they arrive, in groups: every this many seconds or results.
DISPATCH_FLUSH_SECONDS = env_float("DISPATCH_FLUSH_SECONDS", 0.1)
DISPATCH_FLUSH_RESULTS = env_int("DISPATCH_FLUSH_RESULTS", 50)
# How often beat merges settled runs' message partitions into blocks (Postgres only).
MESSAGE_COMPACTION_INTERVAL_SECONDS = env_float("MESSAGE_COMPACTION_INTERVAL_SECONDS", 3600)
SMS_MAX_ATTEMPTS = env_int("SMS_MAX_ATTEMPTS", 10)
SMS_RETRY_BASE_SECONDS = env_float("SMS_RETRY_BASE_SECONDS", 30)
SMS_RETRY_MAX_SECONDS = env_float("SMS_RETRY_MAX_SECONDS", 3600)
SMS_RATE_LIMIT = env_float("SMS_RATE_LIMIT", 0)  # messages/s for all workers; 0 = unlimited
SMS_CONCURRENCY = env_int("SMS_CONCURRENCY", 100)
SMS_GATEWAY_URL = os.environ.get("SMS_GATEWAY_URL", "")
SMS_GATEWAY_TOKEN = os.environ.get("SMS_GATEWAY_TOKEN", "")
SMS_CONNECT_TIMEOUT = env_float("SMS_CONNECT_TIMEOUT", 3)
SMS_READ_TIMEOUT = env_float("SMS_READ_TIMEOUT", 10)
# Extra CA certificates (PEM) to trust for an https gateway; verification is always on.
SMS_GATEWAY_CA_BUNDLE = os.environ.get("SMS_GATEWAY_CA_BUNDLE", "")
SMS_PROVIDER = os.environ.get("SMS_PROVIDER") or (
    "api.providers.http.HttpProvider"
    if SMS_GATEWAY_URL
    else "api.providers.console.ConsoleProvider"
)
# Where the shared rate limiter keeps its counter: the broker's Redis when it is Redis.
SMS_RATE_LIMIT_REDIS_URL = os.environ.get("SMS_RATE_LIMIT_REDIS_URL") or (
    CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else ""
)

LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO").upper()
# plain: `time level logger message`; json: one JSON object per line with the ids as fields.
LOG_FORMAT = (os.environ.get("LOG_FORMAT") or "plain").strip().lower()
try:
    LOGGING = logging_config(LOG_FORMAT, LOG_LEVEL)
except ValueError as exc:
    raise ImproperlyConfigured(str(exc)) from None

# --- Metrics (/metrics on the web port; WORKER_METRICS_PORT for each Celery worker) ---
# Empty: /metrics is open (restrict it by network policy); set: scrapes must send
# `Authorization: Bearer <METRICS_TOKEN>`.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
# tds_messages_due counts due messages up to this many (an index walk; above it, it saturates).
METRICS_DUE_LIMIT = env_int("METRICS_DUE_LIMIT", 10_000)
CELERY_TASK_DEFAULT_QUEUE = "celery"

# Swagger UI (/docs/) and the schema (/api/schema/) are for integrators: open by default.
API_DOCS_PUBLIC = env_bool("API_DOCS_PUBLIC", True)

# --- Behind a TLS-terminating proxy (manage.py check --deploy is clean with these set) ---
if os.environ.get("SECURE_PROXY_SSL_HEADER"):  # e.g. "HTTP_X_FORWARDED_PROTO,https"
    header, _, value = os.environ["SECURE_PROXY_SSL_HEADER"].partition(",")
    SECURE_PROXY_SSL_HEADER = (header.strip(), value.strip() or "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_REDIRECT_EXEMPT = [
    r"^(healthz|readyz|metrics)$"
]  # probes speak plain HTTP inside the cluster
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)

if not DEBUG:
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
    CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# --- E-mail (the daily report) ---
# EMAIL_HOST set: Django's SMTP backend with the EMAIL_* settings below; unset: the console
# backend (development: the mail is printed). EMAIL_BACKEND overrides either (dotted path).
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)  # STARTTLS, usually port 587
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)  # implicit TLS, usually port 465
EMAIL_TIMEOUT = env_float("EMAIL_TIMEOUT", 10)
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND") or (
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend"
)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL") or "task-delay-service@localhost"
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("Set EMAIL_USE_TLS or EMAIL_USE_SSL, not both.")

# --- Daily report (api/services/daily_report/) ---
# Empty: no report. Sent at STATS_EMAIL_TIME (HH:MM in DJANGO_TIME_ZONE) for the day before.
STATS_EMAIL_RECIPIENTS = env_list("STATS_EMAIL_RECIPIENTS")
STATS_EMAIL_TIME = (os.environ.get("STATS_EMAIL_TIME") or "08:00").strip()
try:
    _stats_hour, _stats_minute = (int(part) for part in STATS_EMAIL_TIME.split(":"))
    if not (0 <= _stats_hour < 24 and 0 <= _stats_minute < 60):
        raise ValueError
except ValueError:
    raise ImproperlyConfigured("STATS_EMAIL_TIME must be HH:MM, e.g. 08:00.") from None
# A day missed (beat down, a failed send) is sent late, up to this many days back.
STATS_EMAIL_CATCH_UP_DAYS = env_int("STATS_EMAIL_CATCH_UP_DAYS", 7)
# How often beat looks for a missed or failed day besides the daily run (seconds).
STATS_EMAIL_CATCH_UP_SECONDS = env_float("STATS_EMAIL_CATCH_UP_SECONDS", 3600)
# Celery's crontab entries (the daily report) follow the service's time zone.
CELERY_TIMEZONE = TIME_ZONE

# --- Single sign-on for the admin: OpenID Connect (api/sso/), off unless configured ---
# TEMPLATES DIRS: templates/admin/login.html adds the "Log in with SSO" link.
TEMPLATES[0]["DIRS"].append(BASE_DIR / "templates")
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "api.sso.backend.AdminSingleSignOnBackend",  # does nothing while OIDC_RP_CLIENT_ID is unset
]
OIDC_RP_CLIENT_ID = os.environ.get("OIDC_RP_CLIENT_ID", "")
OIDC_RP_CLIENT_SECRET = os.environ.get("OIDC_RP_CLIENT_SECRET", "")
OIDC_OP_ISSUER = os.environ.get("OIDC_OP_ISSUER", "")
OIDC_OP_AUTHORIZATION_ENDPOINT = os.environ.get("OIDC_OP_AUTHORIZATION_ENDPOINT", "")
OIDC_OP_TOKEN_ENDPOINT = os.environ.get("OIDC_OP_TOKEN_ENDPOINT", "")
OIDC_OP_USER_ENDPOINT = os.environ.get("OIDC_OP_USER_ENDPOINT", "")
OIDC_OP_JWKS_ENDPOINT = os.environ.get("OIDC_OP_JWKS_ENDPOINT") or None
OIDC_RP_SIGN_ALGO = os.environ.get("OIDC_RP_SIGN_ALGO") or "RS256"
OIDC_RP_SCOPES = os.environ.get("OIDC_RP_SCOPES") or "openid email profile"
OIDC_GROUPS_CLAIM = os.environ.get("OIDC_GROUPS_CLAIM") or "groups"
OIDC_STAFF_GROUP = os.environ.get("OIDC_STAFF_GROUP", "")
OIDC_SUPERUSER_GROUP = os.environ.get("OIDC_SUPERUSER_GROUP", "")
OIDC_TIMEOUT = env_float("OIDC_TIMEOUT", 10)
OIDC_USE_PKCE = True
OIDC_CREATE_USER = True
LOGIN_REDIRECT_URL = "/admin/"
LOGIN_REDIRECT_URL_FAILURE = "/admin/login/?sso=refused"
if OIDC_RP_CLIENT_ID and not (
    OIDC_OP_AUTHORIZATION_ENDPOINT and OIDC_OP_TOKEN_ENDPOINT and OIDC_OP_USER_ENDPOINT
):
    raise ImproperlyConfigured(
        "OIDC_RP_CLIENT_ID is set: set OIDC_OP_AUTHORIZATION_ENDPOINT, OIDC_OP_TOKEN_ENDPOINT"
        " and OIDC_OP_USER_ENDPOINT too."
    )
if OIDC_RP_CLIENT_ID and OIDC_RP_SIGN_ALGO[:2] in ("RS", "ES") and not OIDC_OP_JWKS_ENDPOINT:
    raise ImproperlyConfigured(
        f"OIDC_RP_SIGN_ALGO={OIDC_RP_SIGN_ALGO} needs OIDC_OP_JWKS_ENDPOINT."
    )
if OIDC_RP_CLIENT_ID and not (OIDC_STAFF_GROUP or OIDC_SUPERUSER_GROUP):
    raise ImproperlyConfigured("Single sign-on needs OIDC_STAFF_GROUP or OIDC_SUPERUSER_GROUP.")


# --- Bulk client import (issue 13; api/services/client_import) ---
# Inputs up to these sizes are imported during the request (200 with the report); larger ones
# are stored and imported by a Celery task (202, GET /api/imports/<id>/).
IMPORT_SYNC_MAX_BYTES = env_int("IMPORT_SYNC_MAX_BYTES", 1024 * 1024)  # CSV upload
IMPORT_SYNC_MAX_ROWS = env_int("IMPORT_SYNC_MAX_ROWS", 10_000)  # JSON array items
IMPORT_BULK_MAX_BYTES = env_int("IMPORT_BULK_MAX_BYTES", 32 * 1024 * 1024)  # JSON body
IMPORT_CHUNK_ROWS = env_int("IMPORT_CHUNK_ROWS", 20_000)  # rows per committed chunk
IMPORT_REPORT_MAX_ROWS = env_int("IMPORT_REPORT_MAX_ROWS", 1000)  # detailed refusals kept
IMPORT_WRITERS = env_int("IMPORT_WRITERS", 2)  # Postgres connections applying chunks at once
