"""A plain asyncpg pool for the hot single-statement reads (see ``pg_catalog_queries``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg

from adapters.sql.budget import REQUEST_BUDGET, Budget
from adapters.sql.errors import outages_as_unavailable

# A connection ended under us: by the server (57P01 and friends arrive as these), by the network,
# or left by such an end in a state the protocol cannot continue from (InternalClientError).
CONNECTION_LOST: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    ConnectionError,
)
# Errors under those classes that leave the connection healthy: a bad argument, and a statement ended
# by statement_timeout (57014 is an "operator intervention"): repeating one would only wait again.
NOT_LOST: tuple[type[BaseException], ...] = (asyncpg.exceptions.DataError, asyncpg.exceptions.QueryCanceledError)


async def _no_reset(_connection: asyncpg.Connection) -> None:
    """Pooled connections go back as they are: these reads set no session state (no SET, LISTEN,
    advisory locks or cursors), so asyncpg's reset would only cost a round trip per read."""


class PgReadPool:
    """An asyncpg pool for single-statement reads, opened on first use in the serving event loop."""

    def __init__(self, url: str, *, size: int, budget: Budget = REQUEST_BUDGET) -> None:
        self.dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
        self.size = size
        self.budget = budget  # like the SQLAlchemy pool's: a stalled or exhausted pool answers 503
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
                timeout=min(2.0, self.budget.acquire_seconds),
                # The limits are enforced by the server (statement_timeout, lock_timeout), not by a
                # client-side timer per query (asyncpg's command_timeout arms one on every execute).
                server_settings={"jit": "off", **self.budget.server_settings()},
            )
            if self._pool is None:
                self._pool = pool
            else:  # another task opened one meanwhile
                await pool.close()
        return self._pool

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        """Rows of one read. A pooled connection that turns out dead (Postgres restarted or a
        failover or an admin ended it while it sat idle) is dropped and the read retried once on
        a fresh one: reads are safe to repeat. A second failure, an exhausted pool or an unreachable
        server raise the ports' ``Unavailable``."""
        for observe in self.observers:
            observe(sql)
        with outages_as_unavailable():
            return await self._fetch(sql, args)

    async def _fetch(self, sql: str, args: tuple[Any, ...]) -> list[asyncpg.Record]:
        pool = await self.pool()
        for attempt in (1, 2):
            async with pool.acquire(timeout=self.budget.acquire_seconds) as connection:
                try:
                    rows: list[asyncpg.Record] = await connection.fetch(sql, *args)
                    return rows
                except CONNECTION_LOST as error:
                    if isinstance(error, NOT_LOST) or attempt == 2:
                        raise  # the connection is fine: the statement was refused or ran out of time
                    connection.terminate()  # never handed out again
        raise AssertionError("unreachable")

    async def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()
