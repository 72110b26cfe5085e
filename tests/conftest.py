"""Shared fixtures.  Integration tests ask for ``postgres`` or ``redis_url`` and skip with a
reason when the real server is not configured — they are never faked."""

from __future__ import annotations

import os

import pytest
from django.db import connection


@pytest.fixture
def postgres(db):
    """Skip unless the suite runs on PostgreSQL (DATABASE_URL set to postgres://...)."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: set DATABASE_URL=postgres://... to run")
    return connection


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("REDIS_URL", "")
    if not url:
        pytest.skip("needs Redis: set REDIS_URL=redis://... to run")
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.exceptions.ConnectionError as exc:
        pytest.fail(f"REDIS_URL is set but Redis does not answer: {exc}")
    return url


@pytest.fixture
def organisation(db):
    from tests.factories import OrganisationFactory

    return OrganisationFactory()


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="module")
def chromium_browser():
    """Debian's Chromium driven by Playwright's sync API; skips when it is not installed.

    Playwright keeps an asyncio loop running in the main thread while it lives, so Django's
    async-safety guard would refuse every ORM call in this thread: ``DJANGO_ALLOW_ASYNC_UNSAFE``
    is set for exactly that time.  Module scope (not session) so that the loop and the flag end
    with the browser tests: a flag left set leaks into subprocesses (``check --deploy`` fails
    on it) and a loop left running breaks every later database test."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"needs Chromium at {CHROMIUM}: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous
