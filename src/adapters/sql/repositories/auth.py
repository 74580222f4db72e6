"""Users, refresh tokens, email tokens and the access-token check on SQL."""

from __future__ import annotations

import uuid
from datetime import datetime

from adapters.sql.executor import SqlAdapter
from adapters.sql.mapping import params_of, row_mapper
from adapters.sql.statements import accounts as sql
from domain.sessions import EmailToken, EmailTokenPurpose, RefreshToken
from domain.users import User

_user = row_mapper(User)
_refresh_token = row_mapper(RefreshToken)
_email_token = row_mapper(EmailToken)


class SqlUserRepository(SqlAdapter):
    async def add(self, user: User) -> None:
        await self.sql.run(sql.INSERT_USER, **params_of(user))

    async def get(self, user_id: uuid.UUID) -> User | None:
        row = await self.sql.row(sql.USER_BY_ID, user_id=user_id)
        return _user(row) if row else None

    async def get_by_login(self, login: str) -> User | None:
        row = await self.sql.row(sql.USER_BY_LOGIN, login=login.lower())
        return _user(row) if row else None

    async def update(self, user: User) -> None:
        await self.sql.run(sql.UPDATE_USER, **params_of(user, user_id=user.id))


class SqlRefreshTokenRepository(SqlAdapter):
    async def add(self, token: RefreshToken) -> None:
        await self.sql.run(sql.INSERT_REFRESH_TOKEN, **params_of(token, updated_at=token.created_at))

    async def get_by_hash(self, token_hash: str) -> RefreshToken | None:
        row = await self.sql.row(sql.REFRESH_TOKEN_BY_HASH, token_hash=token_hash)
        return _refresh_token(row) if row else None

    async def spend(self, token_id: uuid.UUID, now: datetime) -> bool:
        return await self.sql.run(sql.SPEND_REFRESH_TOKEN, token_id=token_id, now=now) > 0

    async def revoke_family(self, family_id: uuid.UUID, now: datetime) -> None:
        await self.sql.run(sql.REVOKE_FAMILY, family=family_id, now=now)

    async def revoke_user(self, user_id: uuid.UUID, now: datetime, *, keep_family: uuid.UUID | None = None) -> None:
        if keep_family is None:
            await self.sql.run(sql.REVOKE_USER, owner=user_id, now=now)
        else:
            await self.sql.run(sql.REVOKE_USER_BUT_FAMILY, owner=user_id, now=now, keep_family=keep_family)


class SqlEmailTokenRepository(SqlAdapter):
    async def add(self, token: EmailToken) -> None:
        await self.sql.run(sql.INSERT_EMAIL_TOKEN, **params_of(token, updated_at=token.created_at))

    async def get_by_hash(self, token_hash: str, purpose: EmailTokenPurpose) -> EmailToken | None:
        row = await self.sql.row(sql.EMAIL_TOKEN_BY_HASH, token_hash=token_hash, purpose=purpose.value)
        return _email_token(row) if row else None

    async def spend(self, token_id: uuid.UUID, now: datetime) -> bool:
        return await self.sql.run(sql.SPEND_EMAIL_TOKEN, token_id=token_id, now=now) > 0

    async def spend_all(self, user_id: uuid.UUID, purpose: EmailTokenPurpose, now: datetime) -> None:
        await self.sql.run(sql.SPEND_EMAIL_TOKENS_OF_USER, owner=user_id, for_purpose=purpose.value, now=now)


class SqlAccountStates(SqlAdapter):
    """The token check's read: role and token version, with the session's revocation, one statement.

    It always reads the primary (``db.reads``): a revoked session must be refused at once."""

    async def auth_state(self, user_id: uuid.UUID, family_id: uuid.UUID | None = None) -> tuple[str, int] | None:
        row = await self.sql.row(sql.ACCOUNT_STATE, user_id=user_id, family_id=family_id)
        return (row["role"], row["token_version"]) if row else None
