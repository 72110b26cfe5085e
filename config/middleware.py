"""Health endpoints answered before the Host check; 503 with a clear message while the database
is unreachable."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import SimpleTemplateResponse
from django.utils import translation

from wellbeing.languages import reading_language, supported_language

logger = logging.getLogger("pulse.availability")


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        return database_unavailable(request)


def database_unavailable(request: HttpRequest) -> HttpResponse:
    """503 with a clear message, JSON for the API and HTML for pages."""
    logger.warning("event=database_unavailable path=%s", request.path.split("?", 1)[0])
    message = "Pulse cannot reach its database right now. Please try again in a minute."
    if request.path.startswith("/api/") or "application/json" in request.headers.get("Accept", ""):
        response: HttpResponse = JsonResponse(
            {"error": {"code": "unavailable", "message": message}}, status=503
        )
    else:
        response = SimpleTemplateResponse("503.html", {"message": message}, status=503)
        response.render()
    response["Retry-After"] = "30"
    return response


class HealthEndpointsMiddleware:
    """Answer ``/healthz`` and ``/readyz`` before anything reads the Host header.

    A container's health check (``docker-compose.yml``), a load balancer or a Kubernetes probe
    calls them by the container's own address (``127.0.0.1:8000``, a pod IP), which is not in
    ``ALLOWED_HOSTS``: Django would answer 400 and the service would never count as healthy.
    These two views build no URL, set no cookie and say nothing about the site, so the Host
    check protects nothing there.  Listed after the middleware that sets the browser-side
    headers, before ``CommonMiddleware`` (the first to validate the host)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        from wellbeing.views import healthz, readyz

        self.get_response = get_response
        self.views: dict[str, Callable[[HttpRequest], HttpResponse]] = {
            "/healthz": healthz,
            "/readyz": readyz,
        }

    def __call__(self, request: HttpRequest) -> HttpResponse:
        view = self.views.get(request.path_info)
        if view is not None:
            return view(request)
        return self.get_response(request)


class UserLanguageMiddleware:
    """A signed-in person of an organisation reads the pages in their language
    (``wellbeing.languages.reading_language``: their own choice, else the organisation's);
    anyone else in the one ``LocaleMiddleware`` picked from the browser.  After
    ``LocaleMiddleware`` and ``AuthenticationMiddleware``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            user = getattr(request, "user", None)
            language = ""
            if user is not None and user.is_authenticated and user.organisation_id:
                language = reading_language(user, user.organisation)
            elif user is not None and user.is_authenticated:
                language = supported_language(user.language) or ""
        except (OperationalError, InterfaceError):
            # The database is down: answer 503 now rather than wait for it again in the view
            # (``DatabaseUnavailableMiddleware`` sees only a view's exceptions).
            return database_unavailable(request)
        if not (language and translation.check_for_language(language)):
            return self.get_response(request)
        request.LANGUAGE_CODE = language
        with translation.override(language):
            response = self.get_response(request)
        response.headers["Content-Language"] = language  # LocaleMiddleware only sets a default
        return response
