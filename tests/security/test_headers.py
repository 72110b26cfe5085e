"""Every page and API response carries the browser-side protections; production adds HSTS."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.factories import UserFactory
from tests.wellbeing.test_settings import PRODUCTION_ENV, start

ROOT = Path(__file__).resolve().parents[2]

EXPECTED_CSP = {
    "default-src": "'self'",
    "img-src": "'self' data:",
    "style-src": "'self'",
    "script-src": "'self'",
    "frame-ancestors": "'none'",
    "form-action": "'self'",
    "base-uri": "'none'",
}

# Pages, API endpoints, redirects, errors and a static file: the headers do not depend on the
# view or on the status code.
PATHS = [
    "/accounts/login/",
    "/",
    "/healthz",
    "/api/",
    "/api/teams/",
    "/api/schema/",
    "/notifications/preferences/",
    "/no-such-page/",
    "/api/no-such-endpoint/",
]


def csp_directives(header: str) -> dict[str, str]:
    parts = [p.strip() for p in header.split(";") if p.strip()]
    return {p.split(" ", 1)[0]: p.split(" ", 1)[1] if " " in p else "" for p in parts}


def assert_protective_headers(response) -> None:
    assert csp_directives(response["Content-Security-Policy"]) == EXPECTED_CSP
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response["Cross-Origin-Resource-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    permissions = response["Permissions-Policy"]
    for feature in ("camera", "microphone", "geolocation", "payment"):
        assert f"{feature}=()" in permissions


@pytest.mark.parametrize("path", PATHS)
def test_anonymous_responses_carry_security_headers(client, db, path):
    response = client.get(path)
    assert_protective_headers(response)


@pytest.mark.parametrize("path", PATHS)
def test_signed_in_responses_carry_security_headers(client, db, path):
    client.force_login(UserFactory(is_org_admin=True))
    response = client.get(path)
    assert_protective_headers(response)


def test_api_json_error_carries_security_headers(client, db):
    response = client.get("/api/teams/", HTTP_ACCEPT="application/json")
    assert response.status_code in {401, 403}
    assert_protective_headers(response)


def test_only_the_swagger_page_may_run_inline_script(client, db):
    client.force_login(UserFactory())
    response = client.get("/api/docs/")
    directives = csp_directives(response["Content-Security-Policy"])
    assert directives["script-src"] == "'self' 'unsafe-inline'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["default-src"] == "'self'"


# E-mail bodies are not served by us (no CSP applies); everything else is a web page.
EMAIL_TEMPLATE = re.compile(
    r"notifications/templates/notifications/(email_base\.html|[^/]+/body\.html)$"
)
INLINE = re.compile(r"""<script(?![^>]*\bsrc=)[^>]*>|<style\b|\sstyle\s*=|\son[a-z]+\s*=""", re.I)


def test_page_templates_have_no_inline_script_or_style_the_policy_would_block():
    offenders = []
    for template in sorted(ROOT.glob("**/templates/**/*.html")):
        relative = template.relative_to(ROOT).as_posix()
        if relative.startswith((".venv/", "node_modules/")) or EMAIL_TEMPLATE.search(relative):
            continue
        for number, line in enumerate(template.read_text().splitlines(), start=1):
            if INLINE.search(line):
                offenders.append(f"{relative}:{number}: {line.strip()[:80]}")
    assert offenders == [], "inline script/style breaks the CSP:\n" + "\n".join(offenders)


def test_production_sets_hsts_and_secure_cookies():
    result = start(
        PRODUCTION_ENV,
        "-c",
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SESSION_COOKIE_SECURE,"
        " s.CSRF_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY, s.SECURE_SSL_REDIRECT)",
    )
    assert result.returncode == 0, result.stderr
    hsts_seconds, *flags = result.stdout.split()
    assert int(hsts_seconds) >= 31536000
    assert flags == ["True"] * 5


def test_production_responses_send_hsts_over_https():
    result = start(
        PRODUCTION_ENV,
        "-c",
        "import django; django.setup(); from django.test import Client; "
        "r = Client(HTTP_HOST='pulse.example.com').get('/healthz', secure=True); "
        "print(r.status_code, r['Strict-Transport-Security'])",
    )
    assert result.returncode == 0, result.stderr
    status, hsts = result.stdout.strip().split(" ", 1)
    assert status == "200"
    assert "max-age=31536000" in hsts and "includeSubDomains" in hsts
