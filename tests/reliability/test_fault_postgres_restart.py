"""PostgreSQL stops under a running gunicorn, then comes back.

While it is down every request fails fast (well under 6 s) with a 503 and a clear message --
JSON under /api/, an HTML page elsewhere -- never a hang and never a 500 with a traceback;
``/readyz`` names the database as unavailable.  When it is back the same gunicorn serves 200s
again by itself.  Uses a throwaway cluster of its own, never the shared server.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import httpx
import psycopg
import pytest

from .faults import REPO, wait_until

pytestmark = [pytest.mark.slow]

FAIL_FAST_SECONDS = 6.0
PAGE = "/dashboards/organisation/"
SETUP = """
from django.test import Client
from rest_framework.authtoken.models import Token
from tests.factories import OrganisationFactory, UserFactory
org = OrganisationFactory(timezone="UTC")
admin = UserFactory(organisation=org, is_org_admin=True)
browser = Client()
browser.force_login(admin)
print("TOKEN", Token.objects.create(user=admin).key)
print("SESSION", browser.cookies["sessionid"].value)
"""


def prepare_database(url: str) -> tuple[str, str]:
    """Migrate a fresh database and create an admin: (API token, session cookie)."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "DATABASE_URL": url}
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], cwd=REPO, env=env, check=True, timeout=120)
    out = subprocess.run(
        [*manage, "shell", "-c", SETUP],
        cwd=REPO,
        env=env,
        check=True,
        timeout=60,
        capture_output=True,
        text=True,
    ).stdout
    values = dict(line.split(" ", 1) for line in out.splitlines() if " " in line)
    return values["TOKEN"].strip(), values["SESSION"].strip()


def timed(client: httpx.Client, path: str, **headers: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = client.get(path, headers=headers)
    return response, time.monotonic() - started


def test_requests_fail_fast_while_postgres_is_down_and_recover_without_a_restart(
    throwaway_postgres, gunicorn
):
    # given gunicorn (2 workers x 4 threads) on a migrated database in our own cluster
    with psycopg.connect(throwaway_postgres.url("postgres"), autocommit=True) as conn:
        conn.execute("CREATE DATABASE pulse")
    url = throwaway_postgres.url("pulse")
    api_token, session = prepare_database(url)
    web = gunicorn(database_url=url, env={"DATABASE_POOL_MAX": "4"})
    api = {"Authorization": f"Token {api_token}"}
    with httpx.Client(base_url=web.base_url, timeout=30, cookies={"sessionid": session}) as client:
        for _ in range(8):  # fill both workers' pools with live connections
            assert timed(client, "/api/heatmap/", **api)[0].status_code == 200
            assert timed(client, PAGE)[0].status_code == 200
        assert client.get("/readyz").status_code == 200

        # when PostgreSQL stops (pooled connections die with it)
        throwaway_postgres.stop()
        down: list[tuple[str, httpx.Response, float]] = []
        for _ in range(6):
            down.append(("/api/heatmap/", *timed(client, "/api/heatmap/", **api)))
            down.append((PAGE, *timed(client, PAGE)))
        ready, ready_seconds = timed(client, "/readyz")

        # then each request failed fast with 503 and the right kind of body
        slowest = max(seconds for _, _, seconds in down)
        assert slowest < FAIL_FAST_SECONDS, f"a request took {slowest:.1f}s with the database down"
        for path, response, _ in down:
            assert response.status_code == 503, (path, response.status_code, response.text[:300])
            assert response.headers["Retry-After"]
            if path.startswith("/api/"):
                assert response.json()["error"]["code"] == "unavailable"
            else:
                assert response.headers["Content-Type"].startswith("text/html")
                assert "cannot reach its database" in response.text
        # and readiness names the database
        assert ready.status_code == 503 and ready_seconds < FAIL_FAST_SECONDS
        assert ready.json()["status"] == "unavailable"
        assert ready.json()["checks"]["database"] != "ok"

        # when PostgreSQL starts again
        throwaway_postgres.start()
        back = time.monotonic()
        # then the same gunicorn recovers by itself
        wait_until(
            lambda: client.get("/api/heatmap/", headers=api).status_code == 200,
            timeout=30,
            interval=0.2,
            what="200s after the restart",
        )
        recovery = time.monotonic() - back
        statuses: list[int] = []

        def burst() -> None:
            for _ in range(5):
                statuses.append(client.get("/api/heatmap/", headers=api).status_code)
                statuses.append(client.get(PAGE).status_code)

        threads = [threading.Thread(target=burst) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert statuses == [200] * 40, statuses
        assert client.get("/readyz").status_code == 200

    log = web.log()
    assert "Traceback" not in log, log[-3000:]
    print(
        f"\npostgres down: slowest 503 {slowest:.2f}s (readyz {ready_seconds:.2f}s); "
        f"recovered {recovery:.2f}s after the restart"
    )
