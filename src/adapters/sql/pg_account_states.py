"""The access-token check's read on Postgres: one prepared statement on the raw asyncpg pool.

It runs in front of every authenticated request, so it skips SQLAlchemy like the hot catalog
reads do. It always reads the primary: a revoked session must be refused at once.
"""

from __future__ import annotations

import uuid

from adapters.sql.read_pool import PgReadPool

# The session check rides in the same statement (no second round trip): a token whose refresh
# family has a revoked row is refused. ix_refresh_tokens_family_id makes it an index probe.
AUTH_STATE_SQL = (
    "SELECT role, token_version FROM users WHERE id = $1 AND deleted_at IS NULL"
    " AND NOT EXISTS (SELECT 1 FROM refresh_tokens WHERE family_id = $2 AND revoked_at IS NOT NULL)"
)


class PgAccountStates:
    def __init__(self, reads: PgReadPool) -> None:
        self.reads = reads

    async def auth_state(self, user_id: uuid.UUID, family_id: uuid.UUID | None = None) -> tuple[str, int] | None:
        row = await self.reads.fetchrow(AUTH_STATE_SQL, user_id, family_id)
        return (row[0], row[1]) if row is not None else None
