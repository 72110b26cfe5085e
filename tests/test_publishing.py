"""Queueing tasks: a kept broker connection per thread, and a broker outage that never raises."""

from __future__ import annotations

import threading

import pytest

from config import publishing
from notifications.tasks import outbox_deliver


@pytest.fixture(autouse=True)
def _no_kept_connection():
    publishing._drop()
    yield
    publishing._drop()


def test_publishes_reuse_this_threads_connection_and_count_each_task():
    assert publishing.publish(outbox_deliver, times=3) == (3, None)
    kept = publishing._local.connection
    assert publishing.publish(outbox_deliver, kwargs={"message_ids": [1]}) == (1, None)
    assert publishing._local.connection is kept
    # another thread publishes on a connection of its own
    seen = {}

    def other() -> None:
        seen["result"] = publishing.publish(outbox_deliver)
        seen["connection"] = publishing._local.connection
        publishing._drop()

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert seen["result"] == (1, None)
    assert seen["connection"] is not kept


def test_an_unreachable_broker_is_reported_not_raised(monkeypatch):
    assert publishing.publish(outbox_deliver) == (1, None)
    # given the broker moved to a port nobody listens on
    monkeypatch.setattr(outbox_deliver.app.conf, "broker_url", "redis://127.0.0.1:1/0")
    queued, error = publishing.publish(outbox_deliver, times=2)
    # then nothing went out, the caller learns why, and no broken connection is kept
    assert queued == 0
    assert error
    assert publishing._local.connection is None
