"""Thin, idempotent Celery tasks for the outbox.  Running any of them twice, or two at once,
never sends a message twice: delivery claims rows first (see ``services``)."""

from __future__ import annotations

import logging

from celery import shared_task

from . import services

logger = logging.getLogger("pulse.notifications")


@shared_task(name="notifications.tasks.outbox_deliver", ignore_result=True)
def outbox_deliver(message_ids: list[int] | None = None) -> int:
    """Deliver due messages (only ``message_ids`` if given).  If the time budget ran out with
    work left, queue one more run instead of holding the worker."""
    report = services.outbox_deliver_due(message_ids=message_ids)
    if message_ids is None and report.claimed and services.outbox_count_due():
        services._publish_delivery(expected=1)
    return report.sent


@shared_task(name="notifications.tasks.outbox_sweep", ignore_result=True)
def outbox_sweep() -> int:
    """Every minute (beat): release claims of dead workers, queue delivery of due messages
    (including those whose on-commit task never reached the broker)."""
    released, due = services.outbox_sweep()
    logger.info("event=outbox_sweep released=%d due=%d", released, due)
    return due
