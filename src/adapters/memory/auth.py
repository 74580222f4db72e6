"""In-memory users, refresh tokens, email tokens and outbox."""

from __future__ import annotations

import copy
import uuid
from datetime import datetime

from adapters.memory.store import MemoryStore
from domain.errors import Conflict
from domain.sessions import EmailToken, EmailTokenPurpose, RefreshToken
from domain.users import User


class MemoryUserRepository:
    def __init__(self, store: MemoryStore) -> None:
        self.rows: dict[uuid.UUID, User] = store.table("users")

    def _check_unique(self, user: User) -> None:
        for other in self.rows.values():
            if other.id == user.id:
                continue
            if other.username.lower() == user.username.lower():
                raise Conflict("That username is taken.", field="username")
            if other.email.lower() == user.email.lower():
                raise Conflict("That email is already registered.", field="email")

    async def add(self, user: User) -> None:
        self._check_unique(user)
        self.rows[user.id] = copy.copy(user)

    async def get(self, user_id: uuid.UUID) -> User | None:
        user = self.rows.get(user_id)
        return copy.copy(user) if user and user.deleted_at is None else None

    async def get_by_login(self, login: str) -> User | None:
        key = login.lower()
        for user in self.rows.values():
            if user.deleted_at is None and key in (user.email.lower(), user.username.lower()):
                return copy.copy(user)
        return None

    async def update(self, user: User) -> None:
        self._check_unique(user)
        self.rows[user.id] = copy.copy(user)


class MemoryRefreshTokenRepository:
    def __init__(self, store: MemoryStore) -> None:
        self.rows: dict[uuid.UUID, RefreshToken] = store.table("refresh_tokens")

    async def add(self, token: RefreshToken) -> None:
        self.rows[token.id] = copy.copy(token)

    async def get_by_hash(self, token_hash: str) -> RefreshToken | None:
        for token in self.rows.values():
            if token.token_hash == token_hash:
                return copy.copy(token)
        return None

    async def spend(self, token_id: uuid.UUID, now: datetime) -> bool:
        token = self.rows.get(token_id)
        if token is None or token.used_at is not None or token.revoked_at is not None:
            return False
        token.used_at = now
        return True

    async def revoke_family(self, family_id: uuid.UUID, now: datetime) -> None:
        for token in self.rows.values():
            if token.family_id == family_id and token.revoked_at is None:
                token.revoked_at = now

    async def revoke_user(self, user_id: uuid.UUID, now: datetime, *, keep_family: uuid.UUID | None = None) -> None:
        for token in self.rows.values():
            if token.user_id == user_id and token.revoked_at is None and token.family_id != keep_family:
                token.revoked_at = now


class MemoryEmailTokenRepository:
    def __init__(self, store: MemoryStore) -> None:
        self.rows: dict[uuid.UUID, EmailToken] = store.table("email_tokens")

    async def add(self, token: EmailToken) -> None:
        self.rows[token.id] = copy.copy(token)

    async def get_by_hash(self, token_hash: str, purpose: EmailTokenPurpose) -> EmailToken | None:
        for token in self.rows.values():
            if token.token_hash == token_hash and token.purpose is purpose:
                return copy.copy(token)
        return None

    async def spend_all(self, user_id: uuid.UUID, purpose: EmailTokenPurpose, now: datetime) -> None:
        for token in self.rows.values():
            if token.user_id == user_id and token.purpose is purpose and token.used_at is None:
                token.used_at = now

    async def spend(self, token_id: uuid.UUID, now: datetime) -> bool:
        token = self.rows.get(token_id)
        if token is None or token.used_at is not None:
            return False
        token.used_at = now
        return True


class MemoryAccountStates:
    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    async def auth_state(self, user_id: uuid.UUID, family_id: uuid.UUID | None = None) -> tuple[str, int] | None:
        user: User | None = self.store.table("users").get(user_id)
        if user is None or user.deleted_at is not None:
            return None
        tokens = self.store.table("refresh_tokens").values()
        if family_id is not None and any(t.family_id == family_id and t.revoked_at is not None for t in tokens):
            return None
        return user.role.value, user.token_version
