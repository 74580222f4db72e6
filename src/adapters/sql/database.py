"""One database: where statements run (``reads``, ``transaction``, ``write``) and its migrations.

Postgres runs everything on a plain asyncpg pool through ``PgExecutor`` (statements compiled once);
SQLite runs through a SQLAlchemy engine (``SqliteExecutor``). advanced-alchemy's
``SQLAlchemyAsyncConfig`` builds that engine and its ``AlembicCommands`` run the migrations; the
engine also serves tools and tests that want plain SQLAlchemy (seeding, ``EXPLAIN``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from advanced_alchemy.alembic.commands import AlembicCommands
from advanced_alchemy.config import AlembicAsyncConfig, AsyncSessionConfig, EngineConfig, SQLAlchemyAsyncConfig
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import NullPool

from adapters.sql.budget import REQUEST_BUDGET, Budget
from adapters.sql.errors import outages_as_unavailable
from adapters.sql.executor import Executor, SqliteExecutor, TransactionAborted
from adapters.sql.pg_pool import PgPool
from application.ports.errors import Unavailable

MIGRATIONS = Path(__file__).parent / "migrations"
log = logging.getLogger(__name__)


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
    # Writers begin IMMEDIATE (see ``Database.transaction``): they may read before they write, and
    # a deferred transaction cannot wait for the write lock once another connection (a job marking
    # outbox rows, another process) has written meanwhile: SQLite fails it at once.
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


def _sqlalchemy_config(url: str, engine_config: dict[str, Any]) -> SQLAlchemyAsyncConfig:
    return SQLAlchemyAsyncConfig(
        connection_string=url,
        session_config=AsyncSessionConfig(expire_on_commit=False, autoflush=False),
        alembic_config=AlembicAsyncConfig(
            script_location=str(MIGRATIONS),
            script_config=str(MIGRATIONS / "alembic.ini"),
            version_table_name="alembic_version",
        ),
        engine_config=EngineConfig(**engine_config),
    )


class Transaction:
    """A unit of work's transaction: statements through ``executor``; nothing lasts unless committed."""

    __slots__ = ("_commit", "committed", "executor")

    def __init__(self, executor: Executor, commit: Callable[[], Any]) -> None:
        self.executor = executor
        self._commit = commit
        self.committed = False

    async def commit(self) -> None:
        await self._commit()
        self.committed = True


@dataclass
class Database:
    """A Postgres or SQLite database and the budget its statements run under."""

    url: str
    dialect: str
    budget: Budget
    # SQLite allows one writer at a time; writes in this process queue here instead of failing
    # with "database is locked" (busy_timeout covers other processes).
    write_lock: asyncio.Lock
    pg: PgPool | None = None
    _engine: AsyncEngine | None = field(default=None, repr=False)
    _engine_factory: Callable[[], AsyncEngine] | None = field(default=None, repr=False)

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @property
    def engine(self) -> AsyncEngine:
        """A SQLAlchemy engine on the same database (SQLite's executor; tools and tests on Postgres)."""
        if self._engine is None:
            assert self._engine_factory is not None
            self._engine = self._engine_factory()
        return self._engine

    @functools.cached_property
    def reads(self) -> Executor:
        """Single statements outside any transaction (on Postgres one round trip each, autocommit)."""
        if self.pg is not None:
            return self.pg
        return _SqliteReads(self.engine)

    @contextlib.asynccontextmanager
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

    @contextlib.asynccontextmanager
    async def transaction(self, *, take_turn: bool = True) -> AsyncIterator[Transaction]:
        """A transaction that rolls back unless ``commit()`` was called (a unit of work's).

        On SQLite it waits for this process's write turn first, unless ``take_turn`` is false (a
        short write that may run while the same task still holds the turn; busy_timeout bounds it)."""
        if self.pg is not None:
            async with self.pg.transaction() as (pg, pg_commit):
                yield Transaction(pg, pg_commit)
            return
        turn = self.write_turn() if take_turn else contextlib.nullcontext()
        async with turn, self._sqlite_connection(sqlite_begin="IMMEDIATE") as conn:
            with outages_as_unavailable():
                await conn.begin()
            sqlite = SqliteExecutor(conn)

            async def commit() -> None:
                if sqlite.aborted:
                    raise TransactionAborted("a statement of this transaction was refused; nothing was written")
                with outages_as_unavailable():
                    await conn.commit()

            try:
                yield Transaction(sqlite, commit)
            finally:
                if conn.in_transaction():
                    await conn.rollback()

    @contextlib.asynccontextmanager
    async def _sqlite_connection(self, **options: Any) -> AsyncIterator[AsyncConnection]:
        """A pooled SQLAlchemy connection; failing to get one (a locked or missing file) is an outage."""
        with outages_as_unavailable():
            conn = await self.engine.execution_options(**options).connect()
        try:
            yield conn
        finally:
            await conn.close()

    @contextlib.asynccontextmanager
    async def write(self, *, take_turn: bool = True) -> AsyncIterator[Executor]:
        """A short write (stores outside units of work): committed when the block ends without error."""
        async with self.transaction(take_turn=take_turn) as transaction:
            yield transaction.executor
            await transaction.commit()

    async def write_once(self, statement: Any, /, **params: Any) -> int:
        """One idempotent write on its own (rows touched): on Postgres a single autocommit round trip
        (repeated once on a connection found dead, which an idempotent statement allows); on SQLite
        a short transaction without the writers' turn (busy_timeout bounds it), since a caller may
        still hold that turn."""
        if self.pg is not None:
            return await self.pg.run(statement, **params)
        async with self.write(take_turn=False) as executor:
            return await executor.run(statement, **params)

    @contextlib.contextmanager
    def observe(self) -> Iterator[list[tuple[str, object]]]:
        """Every statement run on this database while the block lasts, with what it ran in (the
        same object for the statements of one transaction): tests count a request's statements."""
        seen: list[tuple[str, object]] = []
        if self.pg is not None:

            def record(sql: str, scope: object) -> None:
                seen.append((sql, scope))

            self.pg.observers.append(record)
            try:
                yield seen
            finally:
                self.pg.observers.remove(record)
            return

        def on_execute(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            if statement.split(None, 1)[0].upper() not in {"BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"}:
                seen.append((statement, conn))

        event.listen(self.engine.sync_engine, "before_cursor_execute", on_execute)
        try:
            yield seen
        finally:
            event.remove(self.engine.sync_engine, "before_cursor_execute", on_execute)

    async def dispose(self) -> None:
        if self.pg is not None:
            await self.pg.close()
        if self._engine is not None:
            await self._engine.dispose()


class _SqliteReads:
    """SQLite reads outside a unit of work: each on a pooled connection of its own."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @contextlib.asynccontextmanager
    async def _executor(self) -> AsyncIterator[SqliteExecutor]:
        with outages_as_unavailable():
            conn = await self.engine.connect()
        try:
            yield SqliteExecutor(conn)
        finally:
            await conn.close()

    async def rows(self, statement: Any, /, **params: Any) -> Any:
        async with self._executor() as executor:
            return await executor.rows(statement, **params)

    async def row(self, statement: Any, /, **params: Any) -> Any:
        async with self._executor() as executor:
            return await executor.row(statement, **params)

    async def value(self, statement: Any, /, **params: Any) -> Any:
        async with self._executor() as executor:
            return await executor.value(statement, **params)

    async def run(self, statement: Any, /, **params: Any) -> int:
        raise TypeError("writes go through Database.write() or a unit of work")

    async def run_many(self, statement: Any, rows: Any, /) -> None:
        raise TypeError("writes go through Database.write() or a unit of work")

    def savepoint(self) -> contextlib.AbstractAsyncContextManager[None]:
        raise TypeError("savepoints need a transaction")


def _sqlite_engine(url: str, budget: Budget, pooled: bool) -> AsyncEngine:
    path = url.split(":///", 1)[-1]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine_config: dict[str, Any] = {"connect_args": {"timeout": budget.acquire_seconds}}
    if not pooled:
        engine_config["poolclass"] = NullPool
    engine = _sqlalchemy_config(url, engine_config).get_engine()
    busy_ms = int(budget.acquire_seconds * 1000)
    event.listen(engine.sync_engine, "connect", functools.partial(_sqlite_pragmas, busy_ms))
    event.listen(engine.sync_engine, "begin", _sqlite_begin)
    event.listen(engine.sync_engine, "invalidate", _sqlite_rollback_on_invalidate)
    return engine


def _postgres_tool_engine(url: str, budget: Budget) -> AsyncEngine:
    """SQLAlchemy on Postgres, for tools and tests only: the service's statements use ``PgPool``."""
    args = {"server_settings": {"jit": "off", **budget.server_settings()}}
    return _sqlalchemy_config(url, {"poolclass": NullPool, "connect_args": args}).get_engine()


def open_database(
    url: str,
    *,
    pool_size: int = 10,
    pooled: bool = True,
    budget: Budget = REQUEST_BUDGET,
    write_lock: asyncio.Lock | None = None,
) -> Database:
    """``budget`` bounds every statement, lock wait and pool wait on this database's connections;
    ``write_lock`` lets a second ``Database`` on the same SQLite file share this process's writer turn.

    On Postgres the pool holds up to twice ``pool_size`` connections (units of work and reads share
    it) and opens on first use, inside the event loop that serves.
    """
    url = normalize_url(url)
    lock = write_lock or asyncio.Lock()
    if url.startswith("postgresql"):
        return Database(
            url=url,
            dialect="postgresql",
            budget=budget,
            write_lock=lock,
            pg=PgPool(url, size=2 * pool_size if pooled else 1, budget=budget),
            _engine_factory=functools.partial(_postgres_tool_engine, url, budget),
        )
    if not url.startswith("sqlite"):
        raise ValueError(f"unsupported database URL scheme: {url.split(':', 1)[0]}")
    engine = _sqlite_engine(url, budget, pooled)
    return Database(url=url, dialect="sqlite", budget=budget, write_lock=lock, _engine=engine)


def migrations(url: str) -> AlembicCommands:
    """advanced-alchemy's Alembic commands on this database (``upgrade``, ``downgrade``, ...)."""
    return AlembicCommands(sqlalchemy_config=_sqlalchemy_config(normalize_url(url), {"poolclass": NullPool}))


def migrate(url: str, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (blocking; call from a thread inside an event loop)."""

    def run() -> None:
        migrations(url).upgrade(revision=revision)

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


__all__ = [
    "Budget",
    "Database",
    "Transaction",
    "migrate",
    "migrations",
    "normalize_url",
    "open_database",
]
