"""Fixtures for the fault-injection tests: real SMTP, worker processes, a Redis and a
PostgreSQL of their own, gunicorn.  The SMTP and worker fixtures are the notification tests'."""

from __future__ import annotations

from tests.notifications.conftest import (  # noqa: F401 - fixtures re-exported for this folder
    celery_broker,
    celery_worker,
    smtp_server,
    smtp_settings,
)
from tests.reliability.faults import gunicorn, own_redis, throwaway_postgres  # noqa: F401
