"""Settings for the test suite.

With DATABASE_URL set (CI points it at PostgreSQL) the suite runs there; otherwise on SQLite.
REDIS_URL is only read by the integration tests that need Redis; without it they skip.
"""

from . import env as config_env
from .base import *  # noqa: F403
from .base import DATA_DIR, database_settings

DEBUG = False
SECRET_KEY = "pulse-test-secret-key-not-for-production-use-0123456789"
PULSE_TOKEN_HMAC_KEY = "pulse-test-token-hmac-key"
DATABASES = database_settings(f"sqlite:///{DATA_DIR / 'test.sqlite3'}")
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # SQLite cannot build the aggregate table's covering unique index
    # (``teamaggregate_one_per_cell``: INCLUDE columns), so Django leaves it out there and
    # says so (W039).  On SQLite the rule rests on the close alone, which writes a result's
    # cells once, in one transaction; PostgreSQL, the production database, enforces it.
    SILENCED_SYSTEM_CHECKS = ["models.W039"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CELERY_BROKER_URL = "memory://"
CELERY_TASK_ALWAYS_EAGER = False
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# WhiteNoise warns when the collected-static folder is missing; tests serve from the finders.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
TEST_REDIS_URL = config_env.read("REDIS_URL", "") or ""

# --- Notifications: local webhook stand-ins; real SMTP/broker for worker subprocess tests -----
PULSE_WEBHOOK_ALLOW_LOCALHOST = True
if config_env.read("PULSE_TEST_EMAIL_PORT"):
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = "127.0.0.1"
    EMAIL_PORT = config_env.integer("PULSE_TEST_EMAIL_PORT", 25, minimum=1)
    EMAIL_USE_TLS = False
CELERY_BROKER_URL = config_env.read("PULSE_TEST_BROKER_URL", CELERY_BROKER_URL) or "memory://"
PULSE_OUTBOX_CLAIM_TIMEOUT_SECONDS = config_env.integer(
    "PULSE_TEST_OUTBOX_CLAIM_TIMEOUT_SECONDS", 600, minimum=1
)

# django-axes stays on (the lockout is tested through the real login view); this backend only
# lets Client.login(), which passes no request, through.  Production keeps the strict backend.
AUTHENTICATION_BACKENDS = [
    "config.security.RequestOptionalAxesBackend",
    "django.contrib.auth.backends.ModelBackend",
]
