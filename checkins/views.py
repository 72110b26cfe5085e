"""HTML edges of the check-in: the one-time link, the employee form, thanks, my check-ins and
the "what we store about you" page.

Thin: parse input, call ``checkins.services``/``selectors``, render.  Never logs, echoes or
redirects with a token; every check-in page is ``no-store`` so answers do not sit in caches.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A friendly 403 for a missing or wrong CSRF token (``CSRF_FAILURE_VIEW``)."""
    if request.path.startswith("/api/"):
        return JsonResponse(
            {
                "error": {
                    "code": "csrf_failed",
                    "message": "The request could not be verified. Reload the page and retry.",
                    "fields": {},
                }
            },
            status=403,
        )
    response = render(request, "checkins/csrf_failure.html", status=403)
    response["Cache-Control"] = "no-store"
    return response
