"""Users, roles and the rules for names, emails and passwords."""

from __future__ import annotations

import enum
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from domain.errors import RuleViolation

USERNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{3,32}$")
# Pragmatic address check: one @, no spaces, a dot in the domain, sane length (RFC 5321 limits).
EMAIL_RE = re.compile(
    r"^[^@\s\x00-\x1f\x7f]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
PASSWORD_MIN, PASSWORD_MAX = 10, 128


class Role(enum.StrEnum):
    USER = "user"
    ADMIN = "admin"


def validate_username(value: str) -> str:
    if not USERNAME_RE.fullmatch(value):
        raise RuleViolation("Username must be 3–32 characters of letters, digits, '_', '.' or '-'.", field="username")
    return value


def normalize_email(value: str) -> str:
    """Emails compare case-insensitively; we keep what the user typed, trimmed."""
    email = value.strip()
    if len(email) > 254 or not EMAIL_RE.fullmatch(email):
        raise RuleViolation("Email address is not valid.", field="email")
    return email


def validate_password(value: str, *, field: str = "password") -> str:
    if not PASSWORD_MIN <= len(value) <= PASSWORD_MAX:
        raise RuleViolation(f"Password must be {PASSWORD_MIN}–{PASSWORD_MAX} characters.", field=field)
    return value


@dataclass(slots=True)
class User:
    id: uuid.UUID
    username: str
    email: str
    password_hash: str
    role: Role
    created_at: datetime
    updated_at: datetime
    email_verified: bool = False
    # Bumped when every session must end (password reset): access tokens carry it.
    token_version: int = 0
    deleted_at: datetime | None = field(default=None)

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN
