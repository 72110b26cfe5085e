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

from collections.abc import Callable

from csp.constants import SELF, UNSAFE_INLINE
from csp.middleware import CSPMiddleware, PolicyParts
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase

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
