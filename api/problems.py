"""Every error as RFC 9457 problem+json, mapped once from the error tree.

A problem document carries ``type`` (``urn:cunzheng:problem:<code>``), ``title`` (English),
``title_zh``, ``status``, ``detail``, the stable machine ``code`` and any structured ``details``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from ledger.errors import (
    Conflict,
    CunzhengError,
    InvalidInput,
    KeyNotValid,
    NotFound,
    SignatureInvalid,
    StorageError,
    StorageFull,
    TooLarge,
    Unavailable,
    UnknownDepositor,
    VerificationFailed,
)

__all__ = ["Problem", "install", "problem_response", "status_of"]

MEDIA_TYPE = "application/problem+json"

_STATUS: list[tuple[type[CunzhengError], int]] = [
    (TooLarge, 413),
    (UnknownDepositor, 403),
    (KeyNotValid, 403),
    (InvalidInput, 400),
    (SignatureInvalid, 422),
    (VerificationFailed, 422),
    (NotFound, 404),
    (Conflict, 409),
    (Unavailable, 503),
    (StorageFull, 507),
    (StorageError, 503),
]


class Problem(CunzhengError):
    """An HTTP-level problem that is not a domain error (authentication, roles, routing)."""

    def __init__(self, status: int, code: str, message: str, title_zh: str, **details: Any) -> None:
        super().__init__(message, **details)
        self.status = status
        self.problem_code = code
        self.problem_title_zh = title_zh


def status_of(error: CunzhengError) -> int:
    if isinstance(error, Problem):
        return error.status
    for cls, status in _STATUS:
        if isinstance(error, cls):
            return status
    return 500


def problem_response(
    status: int, code: str, message: str, title_zh: str, details: dict[str, Any] | None = None
) -> JSONResponse:
    body = {
        "type": f"urn:cunzheng:problem:{code}",
        "title": message,
        "title_zh": title_zh,
        "status": status,
        "detail": message,
        "code": code,
        "details": details or {},
    }
    headers = {"Retry-After": "1"} if status in (503, 507) else None
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def install(app: FastAPI) -> None:
    """Map the error tree, request validation and HTTP errors to problem+json."""

    @app.exception_handler(CunzhengError)
    async def domain(_request: Request, exc: CunzhengError) -> JSONResponse:
        if isinstance(exc, Problem):
            return problem_response(
                exc.status, exc.problem_code, exc.message, exc.problem_title_zh, exc.details
            )
        return problem_response(status_of(exc), exc.code, exc.message, exc.title_zh, exc.details)

    @app.exception_handler(RequestValidationError)
    async def validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": [str(x) for x in e.get("loc", ())], "msg": str(e.get("msg", ""))}
            for e in exc.errors()
        ]
        return problem_response(
            422, "invalid_request", "the request does not have the expected shape", "请求格式无效",
            {"errors": errors[:20]},
        )  # fmt: skip

    @app.exception_handler(HTTPException)
    async def http(_request: Request, exc: HTTPException) -> JSONResponse:
        zh = {404: "未找到", 405: "不支持的请求方法"}.get(exc.status_code, "请求错误")
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return problem_response(exc.status_code, code, str(exc.detail), zh)
