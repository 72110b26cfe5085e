"""Fail fast with 503 and a clear message while the database is unreachable."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import SimpleTemplateResponse

logger = logging.getLogger("pulse.availability")


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        logger.warning("event=database_unavailable path=%s", request.path.split("?", 1)[0])
        message = "Pulse cannot reach its database right now. Please try again in a minute."
        if request.path.startswith("/api/") or "application/json" in request.headers.get(
            "Accept", ""
        ):
            response: HttpResponse = JsonResponse(
                {"error": {"code": "unavailable", "message": message}}, status=503
            )
        else:
            response = SimpleTemplateResponse("503.html", {"message": message}, status=503)
            response.render()
        response["Retry-After"] = "30"
        return response
