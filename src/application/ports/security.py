from __future__ import annotations

import uuid
from typing import Protocol


class PasswordHasher(Protocol):
    """Slow, salted password hashing (argon2id). Implementations run off the event loop."""

    async def hash(self, password: str) -> str: ...

    async def verify(self, password_hash: str, password: str) -> bool: ...

    def needs_rehash(self, password_hash: str) -> bool: ...

    async def burn(self, password: str) -> None:
        """Do the work of a verification against a dummy hash (equal timing for unknown users)."""
        ...


class AccessTokenIssuer(Protocol):
    """Mints short-lived signed access tokens (JWT)."""

    lifetime_seconds: int

    def issue(self, *, user_id: uuid.UUID, role: str, token_version: int, family_id: uuid.UUID) -> str: ...


class AccountStates(Protocol):
    """The little the token check needs about an account, read without a transaction.

    Called on every authenticated request, so adapters answer it in one cheap statement.
    """

    async def auth_state(self, user_id: uuid.UUID, family_id: uuid.UUID | None = None) -> tuple[str, int] | None:
        """(role, token_version) of an active user; None when the user is unknown or deleted, or
        when the session ``family_id`` the token was issued from has been revoked (a logout, a
        replayed refresh token, a password change elsewhere)."""
        ...
