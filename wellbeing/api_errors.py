"""One DRF exception handler: every error is ``{"error": {"code", "message", "fields"}}``.

The same shape is documented once (``ErrorSerializer``) and ``AutoSchema`` adds it to every
operation for the error statuses that operation can answer with, so a client generated from the
OpenAPI schema knows every response it can get.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, permissions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from .errors import ServiceError, validation_fields

API_PREFIX = "/api/"


def _error_response(code: str, message: str, status_code: int) -> JsonResponse:
    return JsonResponse(
        {"error": {"code": code, "message": message, "fields": {}}}, status=status_code
    )


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """``handler404``: an API address that matches no route (say ``/api/questions/abc/``)
    answers in the API's error shape, not with the HTML page."""
    if request.path.startswith(API_PREFIX):
        return _error_response("not_found", "Not found.", status.HTTP_404_NOT_FOUND)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """``handler500``: the API's error shape under /api/, the HTML page elsewhere."""
    if request.path.startswith(API_PREFIX):
        return _error_response(
            "server_error",
            "Something went wrong on our side.",
            status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    return defaults.server_error(request)


def _flatten(detail: Any) -> dict[str, list[str]]:
    if isinstance(detail, dict):
        return {
            str(key): [str(item) for item in (value if isinstance(value, list) else [value])]
            for key, value in detail.items()
        }
    if isinstance(detail, list):
        return {"non_field_errors": [str(item) for item in detail]}
    return {}


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, ServiceError):
        return Response(
            {"error": {"code": exc.code, "message": exc.message, "fields": exc.fields}},
            status=exc.status,
        )
    if isinstance(exc, DjangoValidationError):
        fields = validation_fields(exc, non_field_key="non_field_errors")
        return Response(
            {"error": {"code": "invalid", "message": "The request is invalid.", "fields": fields}},
            status=status.HTTP_400_BAD_REQUEST,
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        body = {
            "code": "invalid",
            "message": "The request is invalid.",
            "fields": _flatten(exc.detail),
        }
    else:
        detail = getattr(exc, "detail", str(exc))
        code = getattr(exc, "default_code", "error")
        body = {"code": code, "message": str(detail), "fields": {}}
    response.data = {"error": body}
    return response


class ErrorBodySerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    fields = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Field name -> problems with it; empty when the error is not about a field.",
    )


class ErrorSerializer(serializers.Serializer):
    error = ErrorBodySerializer()


ERROR_DESCRIPTIONS = {
    400: "The request is invalid; `fields` says what was wrong, per field.",
    403: "Not signed in, or not allowed to do this.",
    404: "No such object (or not one you may see), or no such page.",
}


class AutoSchema(SpectacularAutoSchema):
    """drf-spectacular's schema, plus the error responses each operation can return:
    400 when it takes a body or query parameters, 403 unless anyone may call it, 404 when it
    addresses one object or a page.  Responses an operation declares itself are kept."""

    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        responses = operation.setdefault("responses", {})
        for code in self._error_statuses(operation):
            if str(code) not in responses:
                responses[str(code)] = self._get_response_for_code(
                    OpenApiResponse(ErrorSerializer, description=ERROR_DESCRIPTIONS[code]),
                    str(code),
                )
        return operation

    def _error_statuses(self, operation: dict[str, Any]) -> list[int]:
        parameters = operation.get("parameters", [])
        in_query = {p["name"] for p in parameters if p.get("in") == "query"}
        in_path = any(p.get("in") == "path" for p in parameters)
        codes = []
        if "requestBody" in operation or in_query - {"page"}:
            codes.append(400)
        if not all(isinstance(p, permissions.AllowAny) for p in self.view.get_permissions()):
            codes.append(403)
        if in_path or "page" in in_query:
            codes.append(404)
        return codes
