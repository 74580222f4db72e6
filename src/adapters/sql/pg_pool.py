"""The asyncpg pool every Postgres statement of the service runs on: reads and units of work.

A read outside a transaction is one round trip on a pooled connection (autocommit). A unit of
work holds one connection for ``BEGIN`` … ``COMMIT``. Statement and lock limits are the server's
(``statement_timeout``, ``lock_timeout`` from the budget), not a client-side timer per query.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg

from adapters.sql.budget import REQUEST_BUDGET, Budget
from adapters.sql.errors import outages_as_unavailable
from adapters.sql.executor import PgExecutor, PgRunner, PgStatements, TransactionAborted
from application.ports.errors import Unavailable

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
# One compiled form of each statement per process, whichever database (request or job budget) runs it.
STATEMENTS = PgStatements()


def _lost(error: BaseException | None) -> bool:
    return isinstance(error, CONNECTION_LOST) and not isinstance(error, NOT_LOST)


def _drop(connection: asyncpg.Connection) -> None:
    """Close a connection that was lost, so it is never handed out again. asyncpg has usually
    cleaned it up already (the pool took it back and detached our proxy, whose ``terminate()``
    then raises): either way it is gone, and the caller's retry must still happen."""
    with contextlib.suppress(asyncpg.InterfaceError):
        connection.terminate()


async def _reset(connection: asyncpg.Connection) -> None:
    """Back to the pool as it is (nothing here sets session state), unless a transaction was left
    open by a cancelled unit of work: that one is rolled back, never handed to the next user."""
    if connection.is_in_transaction():
        await connection.execute("ROLLBACK")


async def _init(connection: asyncpg.Connection) -> None:
    # JSON columns arrive as Python values; SQLAlchemy's JSON bind processor already sends text.
    for name in ("json", "jsonb"):
        await connection.set_type_codec(name, schema="pg_catalog", encoder=_as_text, decoder=json.loads)


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


async def _end(pool: asyncpg.Pool, connection: asyncpg.Connection, *, committed: bool) -> None:
    """Roll back what was not committed and give the connection back. One the server ended is
    dropped: asyncpg may already have detached it from the pool (then there is nothing to give back)."""
    try:
        if not committed and not connection.is_closed() and connection.is_in_transaction():
            await connection.execute("ROLLBACK")
    except Exception:  # broken meanwhile: it must not be reused
        _drop(connection)
    finally:
        with contextlib.suppress(asyncpg.InterfaceError):
            await pool.release(connection)


class PgPool(PgRunner):
    """An asyncpg pool, opened on first use in the serving event loop; also the executor of single
    statements outside a transaction (reads, and ``Database.write_once``'s idempotent writes)."""

    def __init__(self, url: str, *, size: int, budget: Budget = REQUEST_BUDGET) -> None:
        super().__init__(STATEMENTS, [])
        self.dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
        self.size = size
        self.budget = budget  # a stalled or exhausted pool answers 503 after ``acquire_seconds``
        self._pool: asyncpg.Pool | None = None

    async def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            pool = await asyncpg.create_pool(
                self.dsn,
                min_size=1,
                max_size=self.size,
                reset=_reset,
                init=_init,
                statement_cache_size=1024,
                timeout=min(2.0, self.budget.acquire_seconds),
                server_settings={"jit": "off", **self.budget.server_settings()},
            )
            if self._pool is None:
                self._pool = pool
            else:  # another task opened one meanwhile
                await pool.close()
        return self._pool

    async def _on(
        self, op: Callable[[asyncpg.Connection, str, list[Any]], Awaitable[Any]], sql: str, args: list[Any]
    ) -> Any:
        """One statement on a pooled connection. One found dead (Postgres restarted, a failover, an
        admin ended it while it sat idle) is dropped with its pool-mates and the read retried once on
        a fresh one: a single read or idempotent write outside a transaction is safe to repeat."""
        pool = await self.pool()
        for attempt in (1, 2):
            async with pool.acquire(timeout=self.budget.acquire_seconds) as connection:
                try:
                    return await op(connection, sql, args)
                except CONNECTION_LOST as error:
                    if not _lost(error) or attempt == 2:
                        raise
                    _drop(connection)
                    await pool.expire_connections()
        raise AssertionError("unreachable")

    async def run_many(self, statement: Any, rows: Any, /) -> None:
        raise TypeError("batched writes go through a transaction")

    def savepoint(self) -> contextlib.AbstractAsyncContextManager[None]:
        raise TypeError("savepoints need a transaction")

    async def _begin(self, pool: asyncpg.Pool) -> asyncpg.Connection:
        """A pooled connection with ``BEGIN`` sent. One found dead there (nothing has run yet) is
        replaced once, and its pool-mates expired: after a restart they are all dead."""
        for attempt in (1, 2):
            connection = await pool.acquire(timeout=self.budget.acquire_seconds)
            try:
                await connection.execute("BEGIN")
                return connection
            except BaseException as error:
                if _lost(error):
                    _drop(connection)
                with contextlib.suppress(asyncpg.InterfaceError):  # already detached by the pool
                    await pool.release(connection)
                if not _lost(error) or attempt == 2:
                    raise
                await pool.expire_connections()
        raise AssertionError("unreachable")

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[tuple[PgExecutor, Callable[[], Awaitable[None]]]]:
        """``BEGIN`` on a connection of the pool; rolled back at the end unless committed."""
        with outages_as_unavailable():
            pool = await self.pool()
            connection = await self._begin(pool)
        committed = False

        async def commit() -> None:
            nonlocal committed
            # Postgres answers COMMIT of a transaction an earlier error aborted with ROLLBACK, and
            # no error: that must not pass for a commit (a caller went on after a refused statement).
            with outages_as_unavailable():
                status = await connection.execute("COMMIT")
            if status != "COMMIT":
                raise TransactionAborted("the transaction was aborted by an earlier error; nothing was written")
            committed = True

        try:
            yield PgExecutor(connection, self.statements, self.observers), commit
        except BaseException as error:
            if _lost(error) or (isinstance(error, Unavailable) and _lost(error.__cause__)):
                await pool.expire_connections()  # do not hand out its pool-mates
            raise
        finally:
            await _end(pool, connection, committed=committed)

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()
