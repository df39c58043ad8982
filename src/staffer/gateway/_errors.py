"""Exception handlers that turn every failure into the gateway's one JSON error shape."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from staffer.errors import StoreError

logger = logging.getLogger("staffer.gateway")


class ApiError(Exception):
    """Raised by routes to answer with a status, a machine code, a message and a fix."""

    def __init__(self, status: int, code: str, message: str, fix: str | None = None) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.fix = fix
        super().__init__(message)


def error_response(status: int, code: str, message: str, fix: str | None = None) -> JSONResponse:
    error: dict[str, str] = {"code": code, "message": message}
    if fix:
        error["fix"] = fix
    return JSONResponse({"error": error}, status_code=status)


def _describe(error: dict[str, Any]) -> str:
    where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
    if error.get("type") == "json_invalid":
        ctx = error.get("ctx") or {}
        return f"the body is not valid JSON ({ctx.get('error', 'parse error')})"
    return f"{where}: {error.get('msg', 'invalid')}"


def install_error_handlers(app: FastAPI) -> None:
    async def on_api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, exc.code, exc.message, exc.fix)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = "; ".join(_describe(e) for e in exc.errors())
        return error_response(
            422, "invalid_request", problems, "see /docs for the expected request body"
        )

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = "not_found" if exc.status_code == 404 else f"http_{exc.status_code}"
        return error_response(exc.status_code, code, str(exc.detail))

    async def on_store(request: Request, exc: Exception) -> JSONResponse:
        return error_response(
            503, "store_unavailable", str(exc), "check the disk and the database file, then retry"
        )

    async def on_crash(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("%s %s failed", request.method, request.url.path)
        return error_response(
            500,
            "internal_error",
            f"the gateway failed on this request ({type(exc).__name__})",
            "retry; if it keeps failing, the gateway's log has the details",
        )

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(StoreError, on_store)
    app.add_exception_handler(Exception, on_crash)
