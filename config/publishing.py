"""Queueing Celery tasks from requests, commit hooks and other tasks.

Each thread keeps one broker connection for its publishes (made again after a fork or when the
broker URL changes): a new connection per publish cost several milliseconds, more than the
publish itself.  A publish never raises: the callers' work is committed already, and what did
not reach the broker is re-queued by the tick or the outbox sweep.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any

from celery import Task

_local = threading.local()


def _connection(app: Any) -> tuple[Any, bool]:
    """This thread's publishing connection and whether it is new."""
    key = (os.getpid(), app.conf.broker_url)
    connection = getattr(_local, "connection", None)
    if connection is not None and _local.key == key:
        return connection, False
    _drop()
    connection = app.connection_for_write()
    _local.connection, _local.key = connection, key
    return connection, True


def _drop() -> None:
    connection = getattr(_local, "connection", None)
    _local.connection = None
    if connection is not None:
        with contextlib.suppress(Exception):  # it is being thrown away
            connection.release()


def publish(
    task: Task, *, args: tuple = (), kwargs: dict | None = None, times: int = 1
) -> tuple[int, str | None]:
    """Queue ``task`` ``times`` times.  Returns how many went out and, if the broker could not
    be reached, the error's type name.  One quick try (no long hang in a request); a kept
    connection that fails (the broker restarted meanwhile) is replaced once by a fresh one."""
    queued = 0
    for _attempt in range(2):
        try:
            connection, fresh = _connection(task.app)
            connection.ensure_connection(
                max_retries=1, interval_start=0, interval_step=0.2, timeout=3
            )
            while queued < times:
                task.apply_async(args=args, kwargs=kwargs, connection=connection, retry=False)
                queued += 1
        except Exception as exc:  # kombu raises several types when the broker is unreachable
            _drop()
            if not fresh:
                continue
            return queued, type(exc).__name__
        return queued, None
    return queued, "BrokerUnreachable"  # not reached: the second attempt is always fresh
