"""Users, refresh tokens, email tokens and the outbox on SQL."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.sql.errors import translate
from adapters.sql.tables import EmailTokenRow, OutboxRow, RefreshTokenRow, UserRow, table_of
from domain.ids import new_id
from domain.sessions import EmailToken, EmailTokenPurpose, RefreshToken
from domain.users import Role, User

U = table_of(UserRow)
R = table_of(RefreshTokenRow)
E = table_of(EmailTokenRow)
O = table_of(OutboxRow)  # noqa: E741


def _user(row: Any) -> User:
    return User(
        id=row.id,
        username=row.username,
        email=row.email,
        password_hash=row.password_hash,
        role=Role(row.role),
        created_at=row.created_at,
        updated_at=row.updated_at,
        email_verified=row.email_verified,
        token_version=row.token_version,
        deleted_at=row.deleted_at,
    )


class SqlUserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def add(self, user: User) -> None:
        try:
            async with self.s.begin_nested():
                await self.s.execute(
                    insert(U).values(
                        id=user.id,
                        username=user.username,
                        email=user.email,
                        password_hash=user.password_hash,
                        role=user.role.value,
                        email_verified=user.email_verified,
                        token_version=user.token_version,
                        created_at=user.created_at,
                        updated_at=user.updated_at,
                    )
                )
        except IntegrityError as error:
            raise translate(error) from None

    async def get(self, user_id: uuid.UUID) -> User | None:
        row = (await self.s.execute(select(U).where(U.c.id == user_id, U.c.deleted_at.is_(None)))).first()
        return _user(row) if row else None

    async def get_by_login(self, login: str) -> User | None:
        key = login.lower()
        row = (
            await self.s.execute(
                select(U)
                .where(
                    or_(func.lower(U.c.email) == key, func.lower(U.c.username) == key),
                    U.c.deleted_at.is_(None),
                )
                .limit(1)
            )
        ).first()
        return _user(row) if row else None

    async def update(self, user: User) -> None:
        try:
            async with self.s.begin_nested():
                await self.s.execute(
                    update(U)
                    .where(U.c.id == user.id)
                    .values(
                        username=user.username,
                        email=user.email,
                        password_hash=user.password_hash,
                        role=user.role.value,
                        email_verified=user.email_verified,
                        token_version=user.token_version,
                        deleted_at=user.deleted_at,
                        updated_at=user.updated_at,
                    )
                )
        except IntegrityError as error:
            raise translate(error) from None


def _refresh(row: Any) -> RefreshToken:
    return RefreshToken(
        id=row.id,
        user_id=row.user_id,
        family_id=row.family_id,
        token_hash=row.token_hash,
        expires_at=row.expires_at,
        created_at=row.created_at,
        used_at=row.used_at,
        revoked_at=row.revoked_at,
    )


class SqlRefreshTokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def add(self, token: RefreshToken) -> None:
        await self.s.execute(
            insert(R).values(
                id=token.id,
                user_id=token.user_id,
                family_id=token.family_id,
                token_hash=token.token_hash,
                expires_at=token.expires_at,
                created_at=token.created_at,
                updated_at=token.created_at,
            )
        )

    async def get_by_hash(self, token_hash: str) -> RefreshToken | None:
        row = (await self.s.execute(select(R).where(R.c.token_hash == token_hash))).first()
        return _refresh(row) if row else None

    async def spend(self, token_id: uuid.UUID, now: datetime) -> bool:
        result = await self.s.execute(
            update(R)
            .where(
                R.c.id == token_id,
                R.c.used_at.is_(None),
                R.c.revoked_at.is_(None),
            )
            .values(used_at=now, updated_at=now)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def revoke_family(self, family_id: uuid.UUID, now: datetime) -> None:
        await self.s.execute(
            update(R).where(R.c.family_id == family_id, R.c.revoked_at.is_(None)).values(revoked_at=now, updated_at=now)
        )

    async def revoke_user(self, user_id: uuid.UUID, now: datetime, *, keep_family: uuid.UUID | None = None) -> None:
        condition = [R.c.user_id == user_id, R.c.revoked_at.is_(None)]
        if keep_family is not None:
            condition.append(R.c.family_id != keep_family)
        await self.s.execute(update(R).where(*condition).values(revoked_at=now, updated_at=now))

    async def is_family_revoked(self, family_id: uuid.UUID) -> bool:
        row = (
            await self.s.execute(select(R.c.id).where(R.c.family_id == family_id, R.c.revoked_at.is_not(None)).limit(1))
        ).first()
        return row is not None


class SqlEmailTokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def add(self, token: EmailToken) -> None:
        await self.s.execute(
            insert(E).values(
                id=token.id,
                user_id=token.user_id,
                purpose=token.purpose.value,
                token_hash=token.token_hash,
                expires_at=token.expires_at,
                created_at=token.created_at,
                updated_at=token.created_at,
            )
        )

    async def get_by_hash(self, token_hash: str, purpose: EmailTokenPurpose) -> EmailToken | None:
        row = (
            await self.s.execute(select(E).where(E.c.token_hash == token_hash, E.c.purpose == purpose.value))
        ).first()
        if row is None:
            return None
        return EmailToken(
            id=row.id,
            user_id=row.user_id,
            purpose=EmailTokenPurpose(row.purpose),
            token_hash=row.token_hash,
            expires_at=row.expires_at,
            created_at=row.created_at,
            used_at=row.used_at,
        )

    async def spend(self, token_id: uuid.UUID, now: datetime) -> bool:
        result = await self.s.execute(
            update(E).where(E.c.id == token_id, E.c.used_at.is_(None)).values(used_at=now, updated_at=now)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def spend_all(self, user_id: uuid.UUID, purpose: EmailTokenPurpose, now: datetime) -> None:
        await self.s.execute(
            update(E)
            .where(E.c.user_id == user_id, E.c.purpose == purpose.value, E.c.used_at.is_(None))
            .values(used_at=now, updated_at=now)
        )


class SqlOutboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def add(self, kind: str, payload: dict[str, Any]) -> uuid.UUID:
        [outbox_id] = await self.add_many([(kind, payload)])
        return outbox_id

    async def add_many(self, jobs: Sequence[tuple[str, dict[str, Any]]]) -> list[uuid.UUID]:
        now = datetime.now(UTC)
        ids = [new_id() for _ in jobs]
        rows = [
            {"id": outbox_id, "kind": kind, "payload": payload, "attempts": 0, "created_at": now, "updated_at": now}
            for outbox_id, (kind, payload) in zip(ids, jobs, strict=True)
        ]
        if rows:  # executemany form: a cached compiled statement, the rows in one batch
            await self.s.execute(insert(O), rows)
        return ids


class SqlAccountStates:
    """The token check's read: two columns and the session's revocation, one statement."""

    def __init__(self, db: Any) -> None:
        self.db = db
        revoked = select(R.c.id).where(R.c.family_id == bindparam("fam"), R.c.revoked_at.is_not(None)).exists()
        self._query = select(U.c.role, U.c.token_version).where(
            U.c.id == bindparam("uid"), U.c.deleted_at.is_(None), ~revoked
        )

    async def auth_state(self, user_id: uuid.UUID, family_id: uuid.UUID | None = None) -> tuple[str, int] | None:
        async with self.db.read_engine.connect() as conn:
            row = (await conn.execute(self._query, {"uid": user_id, "fam": family_id})).first()
        return (str(row.role), int(row.token_version)) if row else None
