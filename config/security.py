"""Response headers that limit what a page can do once it reaches a browser.

Django's ``SecurityMiddleware`` already sets HSTS (production), ``X-Content-Type-Options``,
``Referrer-Policy`` and ``Cross-Origin-Opener-Policy``; ``django-csp`` sets the
Content-Security-Policy from ``CONTENT_SECURITY_POLICY``.  This module adds what neither does:

- ``Permissions-Policy``: Pulse never needs a camera, microphone, location or payment API, so a
  script injected despite everything else still cannot ask for them;
- ``Cross-Origin-Resource-Policy: same-origin``: other sites cannot embed our responses;
- one narrow CSP relaxation for the interactive API docs (drf-spectacular's Swagger page
  initialises itself with an inline script and style block).  Every other page gets the strict
  policy with no ``'unsafe-inline'``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable

from axes.backends import AxesStandaloneBackend
from csp.constants import SELF, UNSAFE_INLINE
from csp.middleware import CSPMiddleware, PolicyParts
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django_ratelimit.core import get_usage

logger = logging.getLogger("pulse.security")

PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer",
        "camera",
        "display-capture",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "usb",
        "interest-cohort",
    )
)

#: URL names whose third-party template needs inline script/style (see module docstring).
INLINE_SCRIPT_URL_NAMES = frozenset({"api-docs"})


class PulseCSPMiddleware(CSPMiddleware):
    """django-csp's middleware with the one documented exception for the API docs page."""

    def get_policy_parts(
        self,
        request: HttpRequest,
        response: HttpResponseBase,
        report_only: bool = False,
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        match = getattr(request, "resolver_match", None)
        if not report_only and match is not None and match.url_name in INLINE_SCRIPT_URL_NAMES:
            parts.replace = {
                **(parts.replace or {}),
                "script-src": [SELF, UNSAFE_INLINE],
                "style-src": [SELF, UNSAFE_INLINE],
            }
        return parts


class SecurityHeadersMiddleware:
    """Adds Permissions-Policy and Cross-Origin-Resource-Policy to every response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        response.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        return response


def axes_client_str(
    username: str | None,
    ip_address: str | None,
    user_agent: str | None,
    path_info: str | tuple | list | None,
    request: HttpRequest | None,
) -> str:
    """How django-axes names a client in its log lines: never the e-mail address.

    The username becomes a short keyed hash, so repeated failures against one account can
    still be told apart and correlated in the logs without revealing who it is."""
    if isinstance(path_info, tuple | list):
        path_info = path_info[0] if path_info else ""
    account = "-"
    if username:
        digest = hmac.new(
            settings.SECRET_KEY.encode(), username.strip().lower().encode(), hashlib.sha256
        )
        account = digest.hexdigest()[:12]
    return f"user_hash={account} ip={ip_address or '-'} path={path_info or '-'}"


class RequestOptionalAxesBackend(AxesStandaloneBackend):
    """For the test settings only: lets ``Client.login()`` (which passes no request) through.

    Production keeps ``AxesStandaloneBackend``, which refuses a request-less authenticate so
    that no HTTP path can silently skip the lockout.  The lockout itself is tested through the
    real login view, which does pass the request."""

    def authenticate(self, request, username=None, password=None, **kwargs):  # noqa: ANN001, ANN201
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def client_ip(request) -> str | None:  # noqa: ANN001 - an HttpRequest or axes' request stand-in
    """The client's address for rate limits and lockouts.

    Behind N trusted reverse proxies (``PULSE_TRUSTED_PROXY_COUNT``) the client is the address
    the outermost trusted proxy appended to X-Forwarded-For, i.e. the N-th entry from the right;
    anything further left was written by the client and cannot be trusted.  Without proxies the
    socket address is used and the header is ignored, so it cannot be spoofed.
    """
    from django.conf import settings

    meta = getattr(request, "META", {}) or {}
    proxies = getattr(settings, "PULSE_TRUSTED_PROXY_COUNT", 0)
    if proxies > 0:
        forwarded = [part.strip() for part in meta.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [part for part in forwarded if part]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return meta.get("REMOTE_ADDR")


def rate_usage(
    request: HttpRequest, *, group: str, key: str | Callable, rate: str, increment: bool
) -> dict | None:
    """django-ratelimit's count of ``key`` in ``group`` over the cache (``increment``: count
    this request too); None when the cache is down, so a rate limit never locks people out."""
    try:
        return get_usage(request, group=group, key=key, rate=rate, increment=increment)
    except Exception as exc:
        logger.warning("event=ratelimit_unavailable error=%s", type(exc).__name__)
        return None
