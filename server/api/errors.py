"""How the HTTP API answers errors: ``{"error": {"code", "message"}}`` with the error's status."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from server.errors import AppError, validation_message

_HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: list[dict[str, Any]] | None = None


class ErrorResponse(BaseModel):
    """The body of every error answer (OpenAI-compatible routes add OpenAI's ``type`` and ``param``)."""

    error: ErrorDetail


# Declared on every route, so the API docs show the real error shape rather than FastAPI's own.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorResponse, "description": "Invalid input"},
    "4XX": {"model": ErrorResponse, "description": "Refused request"},
    "5XX": {"model": ErrorResponse, "description": "Failure of the server or of a service it calls"},
}


def error_response(exc: AppError) -> JSONResponse:
    return JSONResponse({"error": exc.to_dict()}, status_code=exc.status)


def invalid_input_response(exc: RequestValidationError) -> JSONResponse:
    """A 422 naming each invalid field, with FastAPI's error list under ``details``."""
    body = {"code": "invalid_input", "message": validation_message(exc), "details": jsonable_encoder(
        exc.errors(), custom_encoder={ValueError: str, AssertionError: str}
    )}
    return JSONResponse({"error": body}, status_code=422)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(_request: Request, exc: AppError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return invalid_input_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # The router's own refusals (no such path, method not allowed) in the same shape as every other error.
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return JSONResponse({"error": {"code": code, "message": message}}, status_code=exc.status_code,
                            headers=exc.headers)
