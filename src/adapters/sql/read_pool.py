"""A plain asyncpg pool for the hot single-statement reads (see ``pg_catalog_queries``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg

ACQUIRE_TIMEOUT = 5.0  # like the SQLAlchemy pool's: an exhausted pool answers 503, not a hang


async def _no_reset(_connection: asyncpg.Connection) -> None:
    """Pooled connections go back as they are: these reads set no session state (no SET, LISTEN,
    advisory locks or cursors), so asyncpg's reset would only cost a round trip per read."""


class PgReadPool:
    """An asyncpg pool for single-statement reads, opened on first use in the serving event loop."""

    def __init__(self, url: str, *, size: int) -> None:
        self.dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
        self.size = size
        self._pool: asyncpg.Pool | None = None
        # Called with each statement before it runs (tests count statements per request).
        self.observers: list[Callable[[str], None]] = []

    async def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            pool = await asyncpg.create_pool(
                self.dsn,
                min_size=1,
                max_size=self.size,
                reset=_no_reset,
                timeout=2,
                command_timeout=30,
                server_settings={"jit": "off"},
            )
            if self._pool is None:
                self._pool = pool
            else:  # another task opened one meanwhile
                await pool.close()
        return self._pool

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        for observe in self.observers:
            observe(sql)
        async with (await self.pool()).acquire(timeout=ACQUIRE_TIMEOUT) as connection:
            rows: list[asyncpg.Record] = await connection.fetch(sql, *args)
            return rows

    async def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()
