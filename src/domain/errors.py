"""Domain errors: what went wrong, in the language of the business.

Each edge translates them once: persistence maps constraint violations into them, HTTP maps them
into RFC 9457 problem details (``entrypoints.http.problems`` holds the one error → status map).
"""

from __future__ import annotations


class DomainError(Exception):
    """Base class; ``detail`` is safe to show to a client."""

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class RuleViolation(DomainError):
    """Well-formed input that breaks a business rule."""


class InvalidInput(DomainError):
    """Input the service cannot interpret, such as a malformed cursor."""


class NotFound(DomainError):
    """The thing does not exist, or its existence is private to someone else."""


class Conflict(DomainError):
    """The write collides with existing state: a duplicate, a spent token, no stock left."""


class Forbidden(DomainError):
    """The caller is known but may not do this."""


class AuthenticationFailed(DomainError):
    """Credentials or tokens are wrong, expired or revoked."""


class TooManyAttempts(DomainError):
    """A throttle tripped; ``retry_after`` is in seconds."""

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
