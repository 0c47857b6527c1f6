"""The one error family of kbchat: each error has an HTTP status and a stable code.

Services raise these without knowing anything of HTTP; the API turns them into
``{"error": {"code", "message"}}`` with the status, and streams turn them into
``error`` events.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class AppError(Exception):
    """Base of every error meant for the user."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class BadRequest(AppError):
    status = 400
    code = "bad_request"


class Unauthorized(AppError):
    status = 401
    code = "unauthorized"


class Forbidden(AppError):
    status = 403
    code = "forbidden"


class NotFound(AppError):
    status = 404
    code = "not_found"


class Conflict(AppError):
    status = 409
    code = "conflict"


class PayloadTooLarge(AppError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(AppError):
    status = 415
    code = "unsupported_media_type"


class InvalidInput(AppError):
    status = 422
    code = "invalid_input"


class ServiceUnavailable(AppError):
    status = 503
    code = "service_unavailable"


class UpstreamError(AppError):
    """A model, search engine or other service we call failed."""

    status = 502
    code = "upstream_error"


class HasErrors(Protocol):
    """A validation failure listing its errors: pydantic's ValidationError, FastAPI's RequestValidationError."""

    def errors(self) -> Sequence[Any]: ...


def validation_message(exc: HasErrors) -> str:
    """One readable line naming each invalid field and why; every transport words invalid input so."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err.get('loc', ())) or 'request'}: {err.get('msg')}" for err in exc.errors()
    )
