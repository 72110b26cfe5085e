"""The Celery application: settings under the CELERY_ namespace, tasks autodiscovered."""

from __future__ import annotations

import logging
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("pulse")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

logger = logging.getLogger("pulse.heartbeat")


@app.task(name="config.celery.heartbeat", ignore_result=True)
def heartbeat() -> str:
    """Logged every minute by the worker so an operator can see worker and beat are alive."""
    logger.info("event=heartbeat status=alive")
    return "alive"
