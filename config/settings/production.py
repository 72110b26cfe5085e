"""Production: PostgreSQL, Redis, SMTP.  Refuses to start without its essential variables."""

from . import env as config_env
from .base import *  # noqa: F403
from .base import EMAIL_HOST_PASSWORD, OIDC_RP_CLIENT_SECRET, database_settings

DEBUG = False
SECRET_KEY = config_env.required("SECRET_KEY")
if len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5:
    raise config_env.ConfigurationError("SECRET_KEY", "must be at least 50 random characters")
_token_hmac_key = config_env.read("PULSE_TOKEN_HMAC_KEY", "") or ""
PULSE_TOKEN_HMAC_KEY = _token_hmac_key or SECRET_KEY
DATABASES = database_settings(config_env.required("DATABASE_URL"))
config_env.placeholders_refused(
    {
        "SECRET_KEY": SECRET_KEY,
        "PULSE_TOKEN_HMAC_KEY": _token_hmac_key,
        # docker compose builds DATABASE_URL from POSTGRES_PASSWORD
        "DATABASE_URL (its password, POSTGRES_PASSWORD)": DATABASES["default"].get("PASSWORD", ""),
        "EMAIL_HOST_PASSWORD": EMAIL_HOST_PASSWORD,
        "OIDC_CLIENT_SECRET": OIDC_RP_CLIENT_SECRET,
    }
)
REDIS_URL = config_env.required("REDIS_URL")
CELERY_BROKER_URL = config_env.read("CELERY_BROKER_URL", REDIS_URL) or REDIS_URL
ALLOWED_HOSTS = config_env.csv_list("ALLOWED_HOSTS")
if not ALLOWED_HOSTS:
    raise config_env.ConfigurationError("ALLOWED_HOSTS", "is required in production and is not set")

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = config_env.boolean("SECURE_SSL_REDIRECT", True)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = config_env.integer("SECURE_HSTS_SECONDS", 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
