"""The access-token check's read on Postgres: one prepared statement on the raw asyncpg pool.

It runs in front of every authenticated request, so it skips SQLAlchemy like the hot catalog
reads do. It always reads the primary: a revoked session must be refused at once.
"""

from __future__ import annotations

import uuid

from adapters.sql.read_pool import PgReadPool

AUTH_STATE_SQL = "SELECT role, token_version FROM users WHERE id = $1 AND deleted_at IS NULL"


class PgAccountStates:
    def __init__(self, reads: PgReadPool) -> None:
        self.reads = reads

    async def auth_state(self, user_id: uuid.UUID) -> tuple[str, int] | None:
        row = await self.reads.fetchrow(AUTH_STATE_SQL, user_id)
        return (row[0], row[1]) if row is not None else None
