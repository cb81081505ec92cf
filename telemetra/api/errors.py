"""Render every error as ``{"error", "code", "message"}`` JSON with the right status."""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from telemetra.api.responses import JsonResponse
from telemetra.errors import MethodNotAllowed, NotFound, StoreUnavailable, TelemetraError

logger = logging.getLogger(__name__)
__all__ = ["install_error_handlers", "error_responses", "REASONS"]

# Fixed phrases: Python's HTTPStatus renamed some of them across versions (422, 413).
REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
RETRY_AFTER_UNAVAILABLE_S = "2"


def _render(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> JsonResponse:
    body: dict[str, Any] = {"error": REASONS.get(status, "Error"), "code": code, "message": message}
    if details is not None:
        body["details"] = details
    return JsonResponse(body, status_code=status, headers=headers)


def render_error(exc: TelemetraError) -> JsonResponse:
    headers = dict(exc.headers)
    if exc.status == 503:
        headers.setdefault("Retry-After", RETRY_AFTER_UNAVAILABLE_S)
    return _render(exc.status, exc.code, exc.message, exc.details, headers)


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [{"loc": [str(part) for part in err.get("loc", ())], "msg": err.get("msg", "")} for err in exc.errors()]


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that turn exceptions into JSON error bodies."""

    @app.exception_handler(TelemetraError)
    async def _telemetra(_: Request, exc: TelemetraError) -> JsonResponse:
        return render_error(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JsonResponse:
        details = _validation_details(exc)
        where = ", ".join(".".join(d["loc"]) + ": " + d["msg"] for d in details[:3])
        return _render(422, "validation_error", f"Invalid request: {where}", details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JsonResponse:
        if exc.status_code == 404:
            return render_error(NotFound())
        if exc.status_code == 405:
            return render_error(MethodNotAllowed(headers=dict(exc.headers or {})))
        return _render(exc.status_code, "http_error", str(exc.detail), headers=dict(exc.headers or {}))

    async def _database_down(_: Request, exc: Exception) -> JsonResponse:
        logger.error("database error: %s", type(exc).__name__, exc_info=exc)
        return render_error(StoreUnavailable())

    for db_error in (
        sqlite3.OperationalError,
        asyncpg.exceptions.InterfaceError,
        asyncpg.exceptions.ConnectionDoesNotExistError,
        asyncpg.exceptions.CannotConnectNowError,
        ConnectionError,
    ):
        app.add_exception_handler(db_error, _database_down)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JsonResponse:
        logger.error("unhandled error", exc_info=exc)
        return _render(500, "internal_error", "An internal error occurred; it has been logged.")


def answer_doc(model: type, status: int = 200, description: str = "Success") -> dict[int | str, dict[str, Any]]:
    """Return the OpenAPI ``responses`` entry documenting a route's answer with a model and its examples
    (documentation only: the route builds its JSON itself, and a test checks it against the model)."""
    return {status: {"model": model, "description": description}}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Return the OpenAPI ``responses`` entry documenting these error statuses."""
    from telemetra.api.schemas import ErrorBody

    return {status: {"model": ErrorBody, "description": REASONS[status]} for status in statuses}
