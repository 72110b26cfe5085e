"""Single sign-on against a real OpenID provider (panva's oidc-provider, run by node), in a real
browser: the person clicks "Sign in with …", signs in at the provider, consents, and comes back
signed in; addresses the provider has not verified, that no one has, or whose person was
deactivated come back to the sign-in page, refused, with the same words."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.sessions.backends.db import SessionStore

from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]
PROVIDER_SCRIPT = ROOT / "tests" / "oidc_provider.mjs"
PROVIDER_PACKAGE = ROOT / "node_modules" / "oidc-provider"
CLIENT_ID = "pulse-test"
CLIENT_SECRET = "pulse-test-client-secret-0123456789"
REFUSED = "Your organisation has not given this account access to Pulse"

# The provider's accounts (id -> claims).  Addresses differ in case from the people's on
# purpose: the match ignores case.
ACCOUNTS = {
    "alice": {"email": "Alice.Lead@Example.test", "email_verified": True},
    "bob": {"email": "bob.nobody@example.test", "email_verified": True},
    "carol": {"email": "carol.gone@example.test", "email_verified": True},
    "dave": {"email": "dave.unchecked@example.test", "email_verified": False},
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def oidc_provider(live_server) -> Iterator[str]:
    """The provider's issuer address, with a client whose redirect URI is the live server's
    callback; skips without node or the npm package."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("needs node to run the OpenID provider: apt-get install -y nodejs npm")
    if not PROVIDER_PACKAGE.exists():
        pytest.skip("needs the npm package oidc-provider: run `npm ci` in the repository root")
    redirect_uri = f"{live_server.url}/accounts/oidc/callback/"
    # its warnings go to a file: a pipe nobody reads could fill and stop the provider
    errors = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed in the finally below
    process = subprocess.Popen(
        [node, str(PROVIDER_SCRIPT), str(free_port()), redirect_uri, json.dumps(ACCOUNTS)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=errors,
        text=True,
    )
    ready: list[str] = []
    started = threading.Event()

    def wait_for_ready() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("ready "):
                ready.append(line.split(" ", 1)[1].strip())
                break
        started.set()

    threading.Thread(target=wait_for_ready, daemon=True).start()
    try:
        if not started.wait(timeout=30) or not ready:
            process.kill()
            process.wait(timeout=10)
            errors.seek(0)
            pytest.fail(f"the OpenID provider did not start: {errors.read()[-2000:]}")
        yield ready[0]
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        errors.close()


@pytest.fixture
def sso(settings, oidc_provider):
    settings.PULSE_SSO_ENABLED = True
    settings.PULSE_SSO_PROVIDER_NAME = "Test IdP"
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = CLIENT_SECRET
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = f"{oidc_provider}/auth"
    settings.OIDC_OP_TOKEN_ENDPOINT = f"{oidc_provider}/token"
    settings.OIDC_OP_USER_ENDPOINT = f"{oidc_provider}/me"
    settings.OIDC_OP_JWKS_ENDPOINT = f"{oidc_provider}/jwks"
    settings.OIDC_RP_SIGN_ALGO = "RS256"
    return oidc_provider


@pytest.fixture
def people(transactional_db):
    alice = UserFactory(email="alice.lead@example.test", full_name="Alice Lead")
    carol = UserFactory(email="carol.gone@example.test", full_name="Carol Gone", is_active=False)
    dave = UserFactory(email="dave.unchecked@example.test", full_name="Dave Unchecked")
    return {"alice": alice, "carol": carol, "dave": dave}


def sign_in_at_provider(browser, live_server, account: str, *, next_path: str = "") -> tuple:
    """From Pulse's sign-in page through the provider's sign-in and consent; returns the
    browser context (the caller closes it) and the page where the browser ends."""
    context = browser.new_context()
    context.set_default_timeout(15_000)
    page = context.new_page()
    query = f"?next={next_path}" if next_path else ""
    page.goto(f"{live_server.url}/accounts/login/{query}")
    page.get_by_role("link", name="Sign in with Test IdP").click()
    # the provider's development sign-in page: any password, the account id as the login
    page.locator("input[name=login]").fill(account)
    page.locator("input[name=password]").fill("anything")
    page.get_by_role("button", name="Sign-in").click()
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(f"{live_server.url}/**")
    page.wait_for_load_state()
    return context, page


def signed_in_user_id(context, live_server) -> str | None:
    cookies = {c["name"]: c["value"] for c in context.cookies(live_server.url)}
    if "sessionid" not in cookies:
        return None
    return SessionStore(session_key=cookies["sessionid"]).get("_auth_user_id")


def test_a_person_signs_in_with_the_provider_and_lands_where_they_were_going(
    chromium_browser, live_server, sso, people, caplog
):
    caplog.set_level(logging.DEBUG)
    context, page = sign_in_at_provider(
        chromium_browser, live_server, "alice", next_path="/notifications/"
    )
    try:
        assert page.url.startswith(f"{live_server.url}/notifications/"), page.url
        assert signed_in_user_id(context, live_server) == str(people["alice"].pk)
        # nothing of the exchange reached a log line: no address, no code, no token
        logged = "\n".join(record.getMessage() for record in caplog.records)
        assert "alice" not in logged.lower()
        assert "code=" not in logged and "eyJ" not in logged  # no code, no JWT
        assert "event=sso_signed_in" in logged
    finally:
        context.close()


def test_an_address_outside_this_site_is_not_followed_after_sign_in(
    chromium_browser, live_server, sso, people
):
    context, page = sign_in_at_provider(
        chromium_browser, live_server, "alice", next_path="https://elsewhere.example/"
    )
    try:
        assert page.url.startswith(live_server.url)
        assert "/accounts/login/" not in page.url
        assert signed_in_user_id(context, live_server) == str(people["alice"].pk)
    finally:
        context.close()


@pytest.mark.parametrize(
    "account", ["bob", "carol", "dave"], ids=["unknown", "deactivated", "unverified"]
)
def test_the_provider_account_without_access_is_turned_back_with_the_same_words(
    chromium_browser, live_server, sso, people, account
):
    context, page = sign_in_at_provider(chromium_browser, live_server, account)
    try:
        assert page.url.startswith(f"{live_server.url}/accounts/login/"), page.url
        assert REFUSED in page.locator("[role=status]").inner_text()
        assert signed_in_user_id(context, live_server) is None
        # and the password form is still there
        assert page.get_by_label("Password").is_visible()
    finally:
        context.close()


def test_provider_tests_run_in_ci():
    # CI has node and the package; a skip there would hide a broken single sign-on.
    if os.environ.get("CI") == "true":
        assert shutil.which("node") is not None
        assert PROVIDER_PACKAGE.exists()


def test_a_person_locked_out_by_failed_passwords_stays_out_through_the_provider(
    chromium_browser, live_server, sso, people, client, settings
):
    # given five wrong passwords for Alice from this address (the browser's too)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(
            "/accounts/login/", {"username": "alice.lead@example.test", "password": "wrong"}
        )
    # when she signs in at the provider, then Pulse still waits for the lock-out to end
    context, page = sign_in_at_provider(chromium_browser, live_server, "alice")
    try:
        assert page.url.startswith(f"{live_server.url}/accounts/login/"), page.url
        assert "Too many failed sign-ins" in page.locator("[role=status]").inner_text()
        assert signed_in_user_id(context, live_server) is None
    finally:
        context.close()
