"""Outbox tuning, read from Django settings with defaults (all overridable per environment)."""

from __future__ import annotations

from django.conf import settings


def _get(name: str, default):
    return getattr(settings, name, default)


def max_attempts() -> int:
    """Delivery attempts before a message is marked ``failed``."""
    return int(_get("PULSE_OUTBOX_MAX_ATTEMPTS", 8))


def backoff_base_seconds() -> float:
    """Delay after the first failed attempt; doubles each attempt."""
    return float(_get("PULSE_OUTBOX_BACKOFF_BASE_SECONDS", 60))


def backoff_max_seconds() -> float:
    return float(_get("PULSE_OUTBOX_BACKOFF_MAX_SECONDS", 6 * 3600))


def backoff_jitter() -> float:
    """Random extra delay as a fraction of the backoff: delay in [d, d * (1 + jitter)]."""
    return float(_get("PULSE_OUTBOX_BACKOFF_JITTER", 0.25))


def claim_timeout_seconds() -> float:
    """A claim older than this is presumed dead (worker killed) and released by the sweeper.
    Delivery refreshes its claims well before this, so a live run never loses them."""
    return float(_get("PULSE_OUTBOX_CLAIM_TIMEOUT_SECONDS", 600))


def batch_size() -> int:
    """Messages claimed per transaction (and sent over one SMTP connection)."""
    return int(_get("PULSE_OUTBOX_BATCH_SIZE", 200))


def task_time_budget_seconds() -> float:
    """A delivery task stops claiming new batches after this and re-queues itself."""
    return float(_get("PULSE_OUTBOX_TASK_TIME_BUDGET_SECONDS", 120))


def max_parallel_tasks() -> int:
    """At most this many delivery tasks are queued for one enqueue or sweep."""
    return int(_get("PULSE_OUTBOX_MAX_PARALLEL_TASKS", 4))


def webhook_timeout_seconds() -> float:
    return float(_get("PULSE_WEBHOOK_TIMEOUT_SECONDS", 5))


def overlap_sent_marks() -> bool:
    """PostgreSQL: send each "sent" mark without waiting for its reply (one in flight, its reply
    collected during the next message; see ``notifications.marks``).  Off: wait each time."""
    return bool(_get("PULSE_OUTBOX_OVERLAP_SENT_MARKS", True))
