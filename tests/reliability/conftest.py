"""Fixtures for the fault-injection tests: real SMTP, worker processes, a Redis and a
PostgreSQL of their own, gunicorn.  The SMTP and worker fixtures are the notification tests'."""

from __future__ import annotations

import logging

import pytest

from tests.notifications.conftest import (  # noqa: F401 - fixtures re-exported for this folder
    celery_broker,
    celery_worker,
    smtp_server,
    smtp_settings,
)
from tests.reliability.faults import gunicorn, own_redis, throwaway_postgres  # noqa: F401


@pytest.fixture(autouse=True)
def _quiet_smtp_server_log():
    """aiosmtpd logs every SMTP command at INFO: thousands of mails would spend the test's
    time formatting log records."""
    logger = logging.getLogger("mail.log")
    previous = logger.level
    logger.setLevel(logging.WARNING)
    yield
    logger.setLevel(previous)
