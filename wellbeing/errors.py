"""The one domain error type services raise; edges turn it into a 4xx."""

from __future__ import annotations

from django.core.exceptions import ValidationError


class ServiceError(Exception):
    """A business rule refused the operation.  ``status`` is the HTTP status edges should use."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        fields: dict[str, list[str]] | None = None,
        status: int = 400,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.fields = fields or {}
        self.status = status


def validation_fields(
    exc: ValidationError, *, non_field_key: str | None = None
) -> dict[str, list[str]]:
    """A Django ``ValidationError`` as ``{field: [messages]}``.  Errors not tied to a field go
    under ``non_field_key``, or are left out when it is None (the caller words them itself)."""
    if hasattr(exc, "error_dict"):
        return {name: [str(m) for m in messages] for name, messages in exc.message_dict.items()}
    return {non_field_key: [str(m) for m in exc.messages]} if non_field_key else {}
