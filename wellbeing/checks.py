"""Startup checks for misconfiguration an operator can make."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Warning, register


@register()
def pulse_configuration(app_configs, **kwargs):  # noqa: ANN001 - Django's signature
    problems = []
    k = getattr(settings, "PULSE_DEFAULT_ANONYMITY_THRESHOLD", 5)
    if k < 3:
        problems.append(
            Error(
                "The anonymity threshold k is below 3.",
                hint="Set PULSE_DEFAULT_K to 3 or more.",
                id="pulse.E001",
            )
        )
    if not getattr(settings, "CELERY_BROKER_URL", ""):
        problems.append(
            Error(
                "No Celery broker is configured.",
                hint="Set REDIS_URL (production) or CELERY_BROKER_URL.",
                id="pulse.E002",
            )
        )
    if not getattr(settings, "PULSE_TOKEN_HMAC_KEY", ""):
        problems.append(
            Error(
                "No key for hashing check-in tokens.",
                hint="Set PULSE_TOKEN_HMAC_KEY or SECRET_KEY.",
                id="pulse.E003",
            )
        )
    schedule = getattr(settings, "CELERY_BEAT_SCHEDULE", {})
    tasks = [entry.get("task") for entry in schedule.values()]
    duplicated = sorted({t for t in tasks if tasks.count(t) > 1})
    if duplicated:
        problems.append(
            Warning(
                f"Celery beat schedules these tasks more than once: {', '.join(duplicated)}.",
                hint="Keep one beat entry per periodic task.",
                id="pulse.W001",
            )
        )
    return problems
