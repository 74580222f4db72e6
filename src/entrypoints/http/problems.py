"""RFC 9457 problem details for every failure, from one exception-handler map.

Clients get ``type``, ``title``, ``status``, ``detail`` and, for input errors, ``errors`` naming
the fields; never a stack trace, SQL or a secret.
"""

from __future__ import annotations

import logging
import re
from http import HTTPStatus
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from application.ports.errors import Unavailable
from domain.errors import (
    AuthenticationFailed,
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    RuleViolation,
    TooManyAttempts,
)

log = logging.getLogger("marketplace.errors")
PROBLEM_JSON = "application/problem+json"
# msgspec messages that mean "right type, but breaks a rule" (422) rather than "wrong shape" (400).
_RULE_MESSAGE = re.compile(
    r"Expected `[^`]+` (of length|>=|<=|>|<|matching|that is a multiple)"
    r"|Invalid enum value"
)


class Problem(msgspec.Struct, omit_defaults=True):
    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[dict[str, Any]] | None = None


def problem_response(
    request: Request[Any, Any, Any] | None,
    status: int,
    detail: str,
    *,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[Any]:
    body = problem_bytes(status, detail, request.url.path if request is not None else None, errors=errors)
    return Response(content=body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def problem_bytes(
    status: int, detail: str, instance: str | None, *, errors: list[dict[str, Any]] | None = None
) -> bytes:
    """A problem document's body (also for answers written below Litestar, by the edge middleware)."""
    title = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    problem = Problem(
        type=f"https://httpstatuses.io/{status}",
        title=title,
        status=status,
        detail=detail,
        instance=instance,
        errors=errors,
    )
    return msgspec.json.encode(problem)


# The one map from a domain error to its HTTP status (a subclass gets its nearest listed base's).
DOMAIN_STATUS: dict[type[DomainError], int] = {
    DomainError: 400,
    RuleViolation: 422,
    InvalidInput: 400,
    NotFound: 404,
    Conflict: 409,
    Forbidden: 403,
    AuthenticationFailed: 401,
    TooManyAttempts: 429,
}


def _domain_error(request: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    status = next(DOMAIN_STATUS[kind] for kind in type(exc).__mro__ if kind in DOMAIN_STATUS)
    errors = [{"field": exc.field, "message": exc.detail}] if exc.field else None
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyAttempts) else None
    if status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": 'Bearer realm="marketplace"'}
    return problem_response(request, status, exc.detail, errors=errors, headers=headers)


def _validation_error(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    errors: list[dict[str, Any]] = []
    status = 400
    extra = exc.extra if isinstance(exc.extra, list) else []
    for item in extra:
        if not isinstance(item, dict):
            continue
        message = str(item.get("message", "Invalid value"))
        field = str(item.get("key") or "") or None
        if field and field.startswith("data."):
            field = field[5:]
        errors.append({"field": field, "message": message, "source": item.get("source")})
        if _RULE_MESSAGE.search(message) and item.get("source") in (None, "body"):
            status = 422
    if any(e["field"] is None and "malformed" in e["message"].lower() for e in errors):
        status = 400
    detail = exc.detail if exc.detail and "Validation failed" not in exc.detail else "The request is not valid."
    if errors:
        first = errors[0]
        detail = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
    return problem_response(request, status, detail, errors=errors or None)


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    detail = exc.detail or HTTPStatus(status).phrase
    if status == 500:
        detail = "Internal server error."
    headers = dict(exc.headers or {})
    if status == 401:
        headers.setdefault("WWW-Authenticate", 'Bearer realm="marketplace"')
        if detail in ("Unauthorized", "Invalid token", ""):
            detail = "Authentication is required: a valid, unexpired, unrevoked bearer token."
    if status == 429:
        headers.setdefault("Retry-After", str(headers.get("RateLimit-Reset") or 60))
        detail = "Too many requests from this address; slow down and retry later."
    if status == 413:
        detail = "The request body is larger than 1 MiB."
    return problem_response(request, status, detail, headers=headers or None)


RETRY_AFTER_SECONDS = 2


def _unavailable(request: Request[Any, Any, Any], exc: Unavailable) -> Response[Any]:
    log.warning("backing service unavailable: %s", exc)
    return problem_response(
        request,
        503,
        "The service is temporarily unavailable; try again shortly.",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(request, 500, "Internal server error.")


exception_handlers: dict[Any, Any] = {
    DomainError: _domain_error,
    Unavailable: _unavailable,
    ValidationException: _validation_error,
    HTTPException: _http_error,
    Exception: _unexpected,
}
