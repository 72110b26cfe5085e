"""Bench-only settings: production settings plus the bare baseline views' URLconf.

Never used outside ``bench/``.  Differences from production, and why:
- ``ROOT_URLCONF`` adds ``/bench/bare/...`` baseline views next to the real URLs;
- plain HTTP on 127.0.0.1 (no SSL redirect, no secure-only cookies) for the load generator;
- e-mail goes to Django's dummy backend: delivering invitations is measured by
  ``bench/smtp_delivery.py``, not here.
"""

import os

os.environ.setdefault("SECRET_KEY", "pulse-bench-secret-key-not-for-production-0123456789-abcdef")
os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
os.environ.setdefault("SITE_URL", "http://127.0.0.1:18000")

from config.settings.production import *  # noqa: E402, F403

ROOT_URLCONF = "bench.urls"
SECURE_SSL_REDIRECT = False
SECURE_HSTS_SECONDS = 0
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
EMAIL_BACKEND = "django.core.mail.backends.dummy.EmailBackend"
LOG_LEVEL = os.environ.get("LOG_LEVEL", "WARNING")
LOGGING["root"]["level"] = LOG_LEVEL  # noqa: F405
# Hashed static files need collectstatic; the bench serves no pages that need them.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
