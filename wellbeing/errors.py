"""The one domain error type services raise; edges turn it into a 4xx."""

from __future__ import annotations


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
