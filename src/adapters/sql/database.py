"""Engines, sessions and migrations for Postgres (asyncpg) and SQLite (aiosqlite).

advanced-alchemy's ``SQLAlchemyAsyncConfig`` builds the engine and session maker, and its
``AlembicCommands`` runs our migrations; the rest of the code only sees ``Database``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from advanced_alchemy.alembic.commands import AlembicCommands
from advanced_alchemy.config import (
    AlembicAsyncConfig,
    AsyncSessionConfig,
    EngineConfig,
    SQLAlchemyAsyncConfig,
)
from sqlalchemy import event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.pool import AsyncAdaptedQueuePool, NullPool, PoolProxiedConnection

from adapters.sql.budget import REQUEST_BUDGET, Budget
from adapters.sql.errors import outages_as_unavailable, unavailable_from
from adapters.sql.read_pool import PgReadPool
from application.ports.errors import Unavailable

MIGRATIONS = Path(__file__).parent / "migrations"


def normalize_url(url: str) -> str:
    """Accept the usual ``postgres://`` / ``postgresql://`` forms and pick the async drivers."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
    return url


def _sqlite_pragmas(busy_timeout_ms: int, dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin: otherwise
    # SAVEPOINTs and rollbacks silently do nothing (SQLAlchemy's documented pysqlite recipe).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    # Units of work begin IMMEDIATE (see ``open_database``): they may read before they write,
    # and a deferred transaction cannot wait for the write lock once another connection (a job
    # marking outbox rows, another process) has written meanwhile: SQLite fails it at once.
    mode = connection.get_execution_options().get("sqlite_begin", "")
    connection.exec_driver_sql(f"BEGIN {mode}".strip())


def _sqlite_rollback_on_invalidate(dbapi_connection: Any, _record: Any, _exception: Any) -> None:
    # A statement interrupted by a cancellation (a client hanging up mid-request) makes the pool
    # invalidate and close its connection. SQLite closes a connection with an unfinished statement
    # lazily (a "zombie" until the cursor is garbage-collected) and it keeps its transaction and the
    # write lock meanwhile: every other writer waits busy_timeout (5 s), then fails. Rolling back
    # first ends the transaction, so the lock goes at once.
    if dbapi_connection is None:
        return
    try:
        dbapi_connection.rollback()
    except Exception:  # already closed or broken: closing it is all that is left
        return


def _disconnect_on_broken_protocol(context: Any) -> None:
    # A connection the server ended while it sat in the pool (a failover, pg_terminate_backend)
    # can fail its next statement with asyncpg's InternalClientError ("cannot switch to state
    # ..."), which SQLAlchemy does not recognise as a disconnect: it would go back to the pool
    # and fail again. Marked a disconnect, the pool drops it and the request answers 503.
    cause = context.original_exception
    for _ in range(4):
        if cause is None:
            return
        if isinstance(cause, asyncpg.exceptions.InternalClientError):
            context.is_disconnect = True
            return
        cause = cause.__cause__


def _outage_as_unavailable(context: ExceptionContext) -> Unavailable | None:
    # Every statement (and commit, rollback) run through SQLAlchemy that fails because the database
    # is gone raises the ports' Unavailable instead; a disconnect is still handled (the pool drops
    # the connection) before it is raised. A cancellation stays one.
    if not isinstance(context.original_exception, Exception):
        return None
    if context.is_disconnect:
        return Unavailable("database", f"connection lost ({type(context.original_exception).__name__})")
    return unavailable_from(context.sqlalchemy_exception or context.original_exception)


class OutageReportingPool(AsyncAdaptedQueuePool):
    """SQLAlchemy's pool, raising the ports' ``Unavailable`` when it cannot hand out a connection:
    none free within the budget, or the server refusing or not answering a new one."""

    _sqla_logger_namespace = "sqlalchemy.pool.impl.AsyncAdaptedQueuePool"  # log as the pool it extends

    def connect(self) -> PoolProxiedConnection:
        with outages_as_unavailable():
            return super().connect()


SLOW_QUERY_SECONDS = 0.2
_slow_log = logging.getLogger("marketplace.slow_sql")


def _start_timer(conn: Any, _cursor: Any, _statement: Any, _params: Any, _context: Any, _many: Any) -> None:
    conn.info.setdefault("query_started", []).append(time.perf_counter())


def _log_if_slow(conn: Any, _cursor: Any, statement: str, _params: Any, _context: Any, _many: Any) -> None:
    """Statements slower than SLOW_QUERY_SECONDS are logged (the SQL text, never the parameters)."""
    started = conn.info.get("query_started")
    if not started:
        return
    elapsed = time.perf_counter() - started.pop()
    if elapsed > SLOW_QUERY_SECONDS:
        _slow_log.warning("slow query took %.3fs: %s", elapsed, " ".join(statement.split())[:500])


@dataclass
class Database:
    """One database: its engine, session maker and dialect name."""

    config: SQLAlchemyAsyncConfig
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    dialect: str
    # SQLite allows one writer at a time; writes in this process queue here instead of failing
    # with "database is locked" (busy_timeout covers other processes).
    write_lock: asyncio.Lock
    # Postgres only: the raw asyncpg pool the hottest catalog reads run on (``pg_catalog_queries``).
    reads: PgReadPool | None = None
    budget: Budget = REQUEST_BUDGET

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @property
    def read_engine(self) -> AsyncEngine:
        """For single-statement reads: on Postgres no BEGIN/ROLLBACK around them (autocommit), so a
        read is one round trip instead of three. Same pool as ``engine``."""
        if self.is_postgres:
            return self.engine.execution_options(isolation_level="AUTOCOMMIT")
        return self.engine

    @asynccontextmanager
    async def write_turn(self) -> AsyncIterator[None]:
        """SQLite: this process's turn to write, waited for at most ``budget.acquire_seconds``."""
        try:
            async with asyncio.timeout(self.budget.acquire_seconds):
                await self.write_lock.acquire()
        except TimeoutError:
            raise Unavailable("database", f"no write turn within {self.budget.acquire_seconds:g} s") from None
        try:
            yield
        finally:
            self.write_lock.release()

    async def dispose(self) -> None:
        if self.reads is not None:
            await self.reads.close()
        await self.engine.dispose()


def open_database(
    url: str,
    *,
    pool_size: int = 10,
    echo: bool = False,
    connect_args: dict[str, Any] | None = None,
    pooled: bool = True,
    budget: Budget = REQUEST_BUDGET,
    hot_reads: bool = True,
    write_lock: asyncio.Lock | None = None,
) -> Database:
    """``budget`` bounds every statement, lock wait and pool wait on this database's connections;
    ``write_lock`` lets a second ``Database`` on the same SQLite file share this process's writer turn."""
    url = normalize_url(url)
    engine_config: dict[str, Any] = {"echo": echo, "poolclass": OutageReportingPool if pooled else NullPool}
    if url.startswith("postgresql") and pooled:
        engine_config.update(
            # No pre-ping: it costs a round trip per checkout. A connection that died (a Postgres
            # restart) fails its first statement, which answers 503, and SQLAlchemy then
            # invalidates the whole pool so the next requests get fresh connections.
            # A fixed pool (no overflow) avoids opening and closing connections under load.
            pool_size=pool_size * 2,
            max_overflow=0,
            pool_pre_ping=False,
            pool_timeout=budget.acquire_seconds,
            pool_recycle=1800,
        )
        # A short connect timeout: while Postgres is down or restarting, requests fail fast (503)
        # instead of queueing behind connection attempts. The server ends statements and lock waits
        # past the budget; the client-side command timeout is only the fallback for a server that
        # does not answer at all.
        args: dict[str, Any] = {
            "timeout": min(2.0, budget.acquire_seconds),
            "command_timeout": budget.statement_seconds + 1,
            "server_settings": {"jit": "off", **budget.server_settings()},
        }
        args.update(connect_args or {})
        engine_config["connect_args"] = args
    elif url.startswith("sqlite"):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine_config["connect_args"] = {"timeout": budget.acquire_seconds, **(connect_args or {})}
    config = SQLAlchemyAsyncConfig(
        connection_string=url,
        session_config=AsyncSessionConfig(expire_on_commit=False, autoflush=False),
        alembic_config=AlembicAsyncConfig(
            script_location=str(MIGRATIONS),
            script_config=str(MIGRATIONS / "alembic.ini"),
            version_table_name="alembic_version",
        ),
        engine_config=EngineConfig(**engine_config),
    )
    engine = config.get_engine()
    event.listen(engine.sync_engine, "before_cursor_execute", _start_timer)
    event.listen(engine.sync_engine, "after_cursor_execute", _log_if_slow)
    if engine.dialect.name == "postgresql":
        event.listen(engine.sync_engine, "handle_error", _disconnect_on_broken_protocol)
    event.listen(engine.sync_engine, "handle_error", _outage_as_unavailable)  # after: it reads is_disconnect
    if engine.dialect.name == "sqlite":
        busy_ms = int(budget.acquire_seconds * 1000)
        event.listen(engine.sync_engine, "connect", functools.partial(_sqlite_pragmas, busy_ms))
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        event.listen(engine.sync_engine, "invalidate", _sqlite_rollback_on_invalidate)
    # Only units of work use sessions; on SQLite they take the write lock up front (busy_timeout
    # then queues them behind other writers) instead of failing to upgrade a read.
    session_engine = engine.execution_options(sqlite_begin="IMMEDIATE") if engine.dialect.name == "sqlite" else engine
    sessions = async_sessionmaker(session_engine, expire_on_commit=False, autoflush=False)
    return Database(
        config=config,
        engine=engine,
        sessions=sessions,
        dialect=engine.dialect.name,
        write_lock=write_lock or asyncio.Lock(),
        reads=PgReadPool(url, size=pool_size, budget=budget)
        if engine.dialect.name == "postgresql" and pooled and hot_reads
        else None,
        budget=budget,
    )


def migrate(url: str, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (blocking; call from a thread inside an event loop)."""

    def run() -> None:
        db = open_database(url, pooled=False)
        AlembicCommands(sqlalchemy_config=db.config).upgrade(revision=revision)

    # Alembic's env runs its own event loop, so it gets a thread of its own: this works from
    # plain scripts and from inside a running loop alike.
    errors: list[BaseException] = []

    def guarded() -> None:
        try:
            run()
        except BaseException as error:  # re-raised in the caller's thread
            errors.append(error)

    thread = threading.Thread(target=guarded, name="migrate")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


__all__ = ["Budget", "Database", "migrate", "normalize_url", "open_database"]
