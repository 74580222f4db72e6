"""Refresh-token sessions: rotation within a family, and reuse detection."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime


@dataclass(slots=True)
class RefreshToken:
    """A stored refresh token; only its hash is kept.

    Every login starts a family; each refresh spends one token and issues the next in the same
    family. Presenting a spent token means it leaked, so the whole family is revoked.
    """

    id: uuid.UUID
    user_id: uuid.UUID
    family_id: uuid.UUID
    token_hash: str
    expires_at: datetime
    created_at: datetime
    used_at: datetime | None = None
    revoked_at: datetime | None = None

    def usable_at(self, now: datetime) -> bool:
        return self.used_at is None and self.revoked_at is None and now < self.expires_at


class EmailTokenPurpose(enum.StrEnum):
    VERIFY_EMAIL = "verify_email"
    PASSWORD_RESET = "password_reset"


@dataclass(slots=True)
class EmailToken:
    """A single-use secret mailed to a user (verification or password reset); stored hashed."""

    id: uuid.UUID
    user_id: uuid.UUID
    purpose: EmailTokenPurpose
    token_hash: str
    expires_at: datetime
    created_at: datetime
    used_at: datetime | None = None
