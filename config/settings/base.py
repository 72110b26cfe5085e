"""Settings shared by every environment.  Values come from the environment (see README)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from celery.schedules import crontab

from . import env as config_env

BASE_DIR = Path(__file__).resolve().parent.parent.parent
DATA_DIR = Path(config_env.read("PULSE_DATA_DIR", str(BASE_DIR / ".pulse")) or BASE_DIR / ".pulse")

SECRET_KEY = config_env.read("SECRET_KEY", "") or ""
DEBUG = config_env.boolean("DEBUG", False)
ALLOWED_HOSTS = config_env.csv_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = config_env.origin_list("CSRF_TRUSTED_ORIGINS", "")
SITE_URL = config_env.url("SITE_URL", "http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "axes",
    "wellbeing",
    "checkins",
    "notifications",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.security.PulseCSPMiddleware",
    "config.security.SecurityHeadersMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # /healthz and /readyz for health checks that call the container by its own address: after
    # the browser-side headers, before the Host header is validated (CommonMiddleware).
    "config.middleware.HealthEndpointsMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "config.middleware.UserLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "config.middleware.DatabaseUnavailableMiddleware",
    # django-axes wants to be last: it turns a lockout into the 429 response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def database_settings(default_url: str | None) -> dict:
    """DATABASES['default'] from DATABASE_URL, tuned per engine."""
    db = config_env.database("DATABASE_URL", default_url)
    engine = db["ENGINE"]
    if engine.endswith("sqlite3"):
        # Web, worker and beat share one file: WAL, a busy timeout and IMMEDIATE transactions
        # keep them from failing with "database is locked".
        db["OPTIONS"] = {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    else:
        db["ENGINE"] = "django.db.backends.postgresql"
        db["CONN_MAX_AGE"] = 0  # the psycopg pool owns connection reuse
        db["CONN_HEALTH_CHECKS"] = True
        pool_min = config_env.integer("DATABASE_POOL_MIN", 1, minimum=0)
        pool_max = config_env.integer("DATABASE_POOL_MAX", 10, minimum=1)
        if pool_min > pool_max:
            # psycopg would refuse the pool at the first query, in every request
            raise config_env.ConfigurationError(
                "DATABASE_POOL_MIN", f"must not exceed DATABASE_POOL_MAX ({pool_min} > {pool_max})"
            )
        db["OPTIONS"] = {
            "pool": {
                "min_size": pool_min,
                "max_size": pool_max,
                # Also how long a request waits for a connection while PostgreSQL is down:
                # short, so it fails fast with a 503 instead of hanging (tests/reliability).
                "timeout": config_env.integer("DATABASE_POOL_TIMEOUT", 4, minimum=1),
            },
            "connect_timeout": config_env.integer("DATABASE_CONNECT_TIMEOUT", 5, minimum=1),
        }
    return {"default": db}


DATABASES = database_settings(None) if config_env.read("DATABASE_URL") else {}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "wellbeing.User"
# django-axes first: it refuses locked-out credentials before the password is even checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("de", "Deutsch")]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
USE_TZ = True
TIME_ZONE = "UTC"  # the database is UTC; organisations and people carry their own zones

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- Product settings -------------------------------------------------------------------------
PULSE_DEFAULT_ANONYMITY_THRESHOLD = config_env.integer("PULSE_DEFAULT_K", 5, minimum=3)
PULSE_TOKEN_HMAC_KEY = config_env.read("PULSE_TOKEN_HMAC_KEY", "") or ""
PULSE_DEFAULT_TIMEZONE = config_env.timezone_name("PULSE_DEFAULT_TIMEZONE", "UTC")
# Raw answers of a cycle are deleted this many days after it closed (aggregates are kept).
PULSE_RESPONSE_RETENTION_DAYS = config_env.integer(
    "PULSE_RESPONSE_RETENTION_DAYS", 730, minimum=30, maximum=36500
)

# --- Celery -----------------------------------------------------------------------------------
REDIS_URL = config_env.read("REDIS_URL", "") or ""
CELERY_BROKER_URL = config_env.read("CELERY_BROKER_URL", REDIS_URL) or ""
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True  # a killed worker's task is redelivered; tasks are idempotent
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# How much lower the workers' CPU priority is than the web's (Unix niceness added at start,
# 0-19; 0 = the same): a cycle's opening or close on the same machine then takes the CPU the
# check-in requests leave, instead of slowing them down.  Not applied by beat.
PULSE_WORKER_NICENESS = config_env.integer("PULSE_WORKER_NICENESS", 10, minimum=0, maximum=19)
# After each chunk of a cycle's opening the worker rests this share of the chunk's time, in
# percent (0 = no rest): the database then has time for the check-ins answered meanwhile.  The
# invitations' deliveries are spread over 15 minutes anyway, so a longer opening delays nobody.
PULSE_OPENING_REST_PERCENT = config_env.integer(
    "PULSE_OPENING_REST_PERCENT", 50, minimum=0, maximum=400
)
# How much freed memory a worker keeps for its next large arrays instead of returning it to the
# system at once, in MiB (0 = the C library's default; see ``config.allocator``).
PULSE_WORKER_HEAP_KEEP_MB = config_env.integer(
    "PULSE_WORKER_HEAP_KEEP_MB", 256, minimum=0, maximum=4096
)
CELERY_BEAT_SCHEDULE = {
    "heartbeat": {"task": "config.celery.heartbeat", "schedule": 60.0},
    "checkins-tick": {"task": "checkins.tasks.tick", "schedule": crontab()},
    "notifications-sweep": {"task": "notifications.tasks.outbox_sweep", "schedule": 60.0},
    "sessions-clear-expired": {
        "task": "config.celery.sessions_clear_expired",
        "schedule": crontab(minute=41),
    },
    "checkins-retention": {
        "task": "checkins.retention.purge_expired_responses",
        "schedule": crontab(hour=3, minute=17),
    },
}
# Task modules outside tasks.py (autodiscovery only finds tasks.py).
CELERY_IMPORTS = ["checkins.retention"]

# --- Cache: shared rate-limit counters (Redis when configured, else per process) -------------
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "pulse",
        }
    }
else:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "pulse"}
    }
RATELIMIT_USE_CACHE = "default"
RATELIMIT_IP_META_KEY = "config.security.client_ip"  # honours PULSE_TRUSTED_PROXY_COUNT
# Failed check-in link guesses per client address (django-ratelimit rate syntax).
PULSE_TOKEN_GUESS_RATE = config_env.rate("PULSE_TOKEN_GUESS_RATE", "20/m")
# Sign-in links (set or reset a password): at most this many e-mails per account, and requests
# per client address; beyond them the page answers as usual and sends nothing.
PULSE_SIGN_IN_LINK_RATE = config_env.rate("PULSE_SIGN_IN_LINK_RATE", "3/h")
PULSE_SIGN_IN_LINK_ADDRESS_RATE = config_env.rate("PULSE_SIGN_IN_LINK_ADDRESS_RATE", "20/h")
# How long a sign-in link works (it also stops once used or once the password changes).
PASSWORD_RESET_TIMEOUT = 60 * 60 * 24 * config_env.integer("PULSE_SIGN_IN_LINK_DAYS", 3, minimum=1)
# Largest check-in submission accepted (bytes); bigger bodies get a 413.
PULSE_CHECKIN_MAX_BODY_BYTES = config_env.integer(
    "PULSE_CHECKIN_MAX_BODY_BYTES", 65536, minimum=4096
)
CSRF_FAILURE_VIEW = "checkins.views.csrf_failure"

# --- Email ------------------------------------------------------------------------------------
EMAIL_BACKEND = config_env.dotted_path(
    "EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend"
)
EMAIL_HOST = config_env.read("EMAIL_HOST", "localhost")
EMAIL_PORT = config_env.integer("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = config_env.read("EMAIL_HOST_USER", "") or ""
EMAIL_HOST_PASSWORD = config_env.read("EMAIL_HOST_PASSWORD", "") or ""
EMAIL_USE_TLS = config_env.boolean("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = config_env.integer("EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = config_env.read("DEFAULT_FROM_EMAIL", "Pulse <pulse@localhost>")

# --- REST framework ---------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "wellbeing.api_errors.AutoSchema",
    "EXCEPTION_HANDLER": "wellbeing.api_errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Pulse API",
    "DESCRIPTION": "Anonymous wellbeing check-ins, team trends and flags.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI assets ship with the project: no CDN at run time.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several models have a "kind" with different choices: name each enum explicitly.
    "ENUM_NAME_OVERRIDES": {"QuestionKindEnum": "checkins.models.Question.Kind"},
}

# --- Logging: key=value lines; never tokens, answers or e-mail addresses -----------------------
LOG_LEVEL = config_env.log_level("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "keyvalue": {"format": "ts=%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"},
    },
    "filters": {"redact_tokens": {"()": "config.log_redaction.RedactTokensFilter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "keyvalue",
            "filters": ["redact_tokens"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Django's own loggers come with handlers of Django's that do not redact (under DEBUG
        # they would print a refused link's address): none, their lines go to ours at the root.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        # Access-style request logs could carry a token in a query string: keep them quiet.
        "django.server": {"handlers": [], "level": "WARNING", "propagate": True},
        # At DEBUG it logs every failed variable lookup with the whole template context, which
        # for an invitation holds the one-time link: never below INFO, whatever LOG_LEVEL says.
        "django.template": {"level": "INFO"},
    },
}

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
# Database sessions with a prebuilt read (config/sessions.py); data and writes as Django's.
SESSION_ENGINE = "config.sessions"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"

# Content-Security-Policy (django-csp 4); config/security.py adds Permissions-Policy and the one
# exception for the Swagger page.  No 'unsafe-inline': templates use classes, not style="".
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "style-src": ["'self'"],
        "script-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'none'"],
    }
}

# --- Brute force: lock a (username, address) pair out after repeated failed logins -------------
AXES_ENABLED = config_env.boolean("AXES_ENABLED", True)
AXES_FAILURE_LIMIT = config_env.integer("AXES_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=config_env.integer("AXES_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# The login form posts the e-mail as "username" (USERNAME_FIELD is "email").
AXES_USERNAME_FORM_FIELD = "username"
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429
# No per-login access log (who signed in when, from where): Pulse does not need it.
AXES_DISABLE_ACCESS_LOG = True
# Log lines name an account by a keyed hash, never by its e-mail address.
AXES_CLIENT_STR_CALLABLE = "config.security.axes_client_str"
# Behind a TLS-terminating proxy every request comes from the proxy; count the trusted proxies
# so lockouts and rate limits see the real client address.
PULSE_TRUSTED_PROXY_COUNT = config_env.integer("PULSE_TRUSTED_PROXY_COUNT", 0, minimum=0)
AXES_CLIENT_IP_CALLABLE = "config.security.client_ip"

# --- Single sign-on: OpenID Connect (mozilla-django-oidc), on only when OIDC_CLIENT_ID is set ---
# The provider's e-mail claim signs in the active person with that address; nobody is created
# (wellbeing/sso.py).  Either all of client, secret and endpoints are set, or none.
OIDC_RP_CLIENT_ID = (config_env.read("OIDC_CLIENT_ID", "") or "").strip()
OIDC_RP_CLIENT_SECRET = config_env.read("OIDC_CLIENT_SECRET", "") or ""
OIDC_OP_AUTHORIZATION_ENDPOINT = config_env.endpoint("OIDC_AUTHORIZATION_ENDPOINT")
OIDC_OP_TOKEN_ENDPOINT = config_env.endpoint("OIDC_TOKEN_ENDPOINT")
OIDC_OP_USER_ENDPOINT = config_env.endpoint("OIDC_USERINFO_ENDPOINT")
OIDC_OP_JWKS_ENDPOINT = config_env.endpoint("OIDC_JWKS_ENDPOINT")
OIDC_RP_SIGN_ALGO = config_env.choice(
    "OIDC_SIGN_ALGORITHM",
    "RS256",
    ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512"),
)
PULSE_SSO_PROVIDER_NAME = (config_env.read("OIDC_PROVIDER_NAME", "") or "").strip()
_oidc_required = {
    "OIDC_CLIENT_ID": OIDC_RP_CLIENT_ID,
    "OIDC_CLIENT_SECRET": OIDC_RP_CLIENT_SECRET,
    "OIDC_AUTHORIZATION_ENDPOINT": OIDC_OP_AUTHORIZATION_ENDPOINT,
    "OIDC_TOKEN_ENDPOINT": OIDC_OP_TOKEN_ENDPOINT,
    "OIDC_USERINFO_ENDPOINT": OIDC_OP_USER_ENDPOINT,
    "OIDC_JWKS_ENDPOINT": OIDC_OP_JWKS_ENDPOINT,
}
_oidc_missing = [name for name, value in _oidc_required.items() if not value]
if 0 < len(_oidc_missing) < len(_oidc_required) or (PULSE_SSO_PROVIDER_NAME and _oidc_missing):
    raise config_env.ConfigurationError(
        ", ".join(_oidc_missing),
        "not set (single sign-on needs all of the OIDC_ variables, or none)",
    )
PULSE_SSO_ENABLED = not _oidc_missing
OIDC_RP_SCOPES = "openid email"
OIDC_USE_PKCE = True
OIDC_USE_NONCE = True
OIDC_CREATE_USER = False
OIDC_TIMEOUT = 10  # seconds for each call to the provider (token, userinfo, keys)
OIDC_AUTHENTICATION_CALLBACK_URL = "oidc_callback"
LOGIN_REDIRECT_URL_FAILURE = "login"
