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
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CELERY_BROKER_URL = "memory://"
CELERY_TASK_ALWAYS_EAGER = False
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
TEST_REDIS_URL = config_env.read("REDIS_URL", "") or ""
