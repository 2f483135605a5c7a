"""Every failure as a JSON error: ``{"error": code, "message": text, "errors": [{"field", "reason"}]}``.

Validation failures name each field and the reason; nothing echoes the input back (it may be
huge, or hold something secret); an unexpected error is logged with its traceback and
answered with a plain 500.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from agi.errors import AdminError

log = logging.getLogger("agi.web")

_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
          409: "conflict", 413: "too_large", 422: "validation_failed", 429: "rate_limited", 500: "internal"}


class ApiError(Exception):
    """An error answer: status, a message that says what to do, optionally the fields at fault."""

    def __init__(self, status: int, message: str, errors: list[dict] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors or []
        self.headers = headers


def not_found(what: str) -> ApiError:
    return ApiError(404, f"no {what}")


def invalid(field: str | None, reason: str) -> ApiError:
    return ApiError(422, reason, [{"field": field, "reason": reason}])


def body(status: int, message: str, errors: list[dict] | None = None) -> dict:
    return {"error": _CODES.get(status, "error"), "message": message, "errors": errors or []}


def response(status: int, message: str, errors: list[dict] | None = None,
             headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body(status, message, errors), status_code=status, headers=headers)


def _field(loc: tuple) -> str:
    parts = list(loc[1:] if loc and loc[0] == "body" else loc)
    return ".".join(str(p) for p in parts) or "body"


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return response(exc.status, exc.message, exc.errors, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": _field(tuple(e.get("loc", ()))), "reason": e.get("msg", "invalid")} for e in exc.errors()]
        return response(422, "the request is not valid: see errors", errors)

    @app.exception_handler(AdminError)
    async def admin_error(_request: Request, exc: AdminError) -> JSONResponse:
        return response(422, str(exc), [{"field": None, "reason": str(exc)}])

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = {404: "no such endpoint: see /docs", 405: "method not allowed here: see /docs"}.get(
            exc.status_code, str(exc.detail))
        return response(exc.status_code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return response(500, "internal error; the server log has the details")
