"""Domain errors: what went wrong, in the language of the business.

Each edge translates them once: persistence maps constraint violations into them, HTTP maps them
into RFC 9457 problem details.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base class; ``detail`` is safe to show to a client."""

    status_hint = 400

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class RuleViolation(DomainError):
    """Well-formed input that breaks a business rule (HTTP 422)."""

    status_hint = 422


class InvalidInput(DomainError):
    """Input the service cannot interpret, such as a malformed cursor (HTTP 400)."""

    status_hint = 400


class NotFound(DomainError):
    """The thing does not exist, or its existence is private to someone else (HTTP 404)."""

    status_hint = 404


class Conflict(DomainError):
    """The write collides with existing state: a duplicate, a spent token, no stock left (HTTP 409)."""

    status_hint = 409


class Forbidden(DomainError):
    """The caller is known but may not do this (HTTP 403)."""

    status_hint = 403


class AuthenticationFailed(DomainError):
    """Credentials or tokens are wrong, expired or revoked (HTTP 401)."""

    status_hint = 401


class TooManyAttempts(DomainError):
    """A throttle tripped (HTTP 429); ``retry_after`` is in seconds."""

    status_hint = 429

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
