"""Shared pieces of the browser tests (Playwright driving Debian's Chromium against
pytest-django's live server; the ``chromium_browser`` fixture is in ``tests/conftest.py``):
pages signed in without the login form, axe-core's serious and critical violations, and
full-page screenshots under ``test-output/screenshots``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "test-output" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}

needs_axe = pytest.mark.skipif(
    not AXE.exists(), reason="needs axe-core: run `npm ci` in the repository root"
)


def screenshot(page: Any, name: str, *, area: str) -> None:
    """Save a full-page screenshot as ``<area>-<name>.png``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{area}-{name}.png"), full_page=True)


def axe_violations(page: Any) -> list[dict]:
    """axe-core's serious and critical violations on the page as it is now."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def signed_in_context(browser: Any, live_server: Any, client: Any, user: Any) -> Any:
    """A desktop browser context signed in as ``user`` (session made by the test client, so
    the login form and its lock-out rules stay out of the way).  The caller closes it."""
    client.force_login(user)
    # bypass_csp only so axe-core can be injected; the pages themselves run no script.
    context = browser.new_context(viewport=DESKTOP, bypass_csp=True)
    context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    return context


class SignedInPages:
    """Opens pages signed in as one user or another; ``close`` closes every context opened."""

    def __init__(self, browser: Any, live_server: Any, client: Any) -> None:
        self._browser, self._live_server, self._client = browser, live_server, client
        self._contexts: list[Any] = []

    def open(self, user: Any) -> Any:
        context = signed_in_context(self._browser, self._live_server, self._client, user)
        self._contexts.append(context)
        return context.new_page()

    def close(self) -> None:
        for context in self._contexts:
            context.close()
