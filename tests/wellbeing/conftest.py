"""The notification tests' real Celery worker (and the broker it is given), for the tests of
the worker's logging."""

from tests.notifications.conftest import (  # noqa: F401 - fixtures re-exported for this folder
    celery_broker,
    celery_worker,
)
