"""Run the Core statements of ``adapters/sql/statements``: one definition, two executors.

Every statement is a SQLAlchemy Core expression with named bind parameters, built once at import
(or once per shape, see ``statements.products``). On Postgres, ``PgStatements`` compiles each one
once for asyncpg and the executor runs the SQL text on a plain asyncpg connection, where asyncpg
prepares it once per connection: no session, no per-call compilation, records read by column
name. On SQLite, the same expression runs through SQLAlchemy (its compiled cache, its type
processing). Both raise the same errors: a constraint violation becomes its domain error
(``errors.translate``), so repositories never catch driver exceptions.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

import asyncpg
from advanced_alchemy.types import GUID, DateTimeUTC
from sqlalchemy.dialects.postgresql import asyncpg as pg_asyncpg
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.compiler import SQLCompiler

from adapters.sql.errors import constraint_of, outages_as_unavailable, translate, unavailable_from
from adapters.sql.statements.common import KeysetPages
from adapters.sql.types import Money

# A row read by column name: an asyncpg ``Record`` or a SQLAlchemy ``RowMapping``.
Row = Mapping[str, Any]


class Executor(Protocol):
    """What repositories and queries run statements with (inside or outside a transaction)."""

    async def rows(self, statement: Executable, /, **params: Any) -> Sequence[Row]: ...

    async def row(self, statement: Executable, /, **params: Any) -> Row | None: ...

    async def value(self, statement: Executable, /, **params: Any) -> Any: ...

    async def run(self, statement: Executable, /, **params: Any) -> int:
        """Execute a write; the number of rows it touched."""
        ...

    async def run_many(self, statement: Executable, rows: Sequence[Mapping[str, Any]], /) -> None:
        """The same write once per parameter set, sent as one batch."""
        ...

    def savepoint(self) -> contextlib.AbstractAsyncContextManager[None]:
        """A nested transaction: an error inside undoes only what ran inside (the caller goes on)."""
        ...


class SqlAdapter:
    """A repository or query adapter: it runs its statements on ``self.sql`` (a unit of work's
    executor, or ``Database.reads`` outside one)."""

    def __init__(self, executor: Executor) -> None:
        self.sql = executor


class DialectAdapter(SqlAdapter):
    """A repository with a Postgres form of some writes: one statement (one round trip) where
    SQLite, without data-modifying CTEs or locking reads, runs two."""

    def __init__(self, executor: Executor, dialect: str) -> None:
        super().__init__(executor)
        self.on_postgres = dialect == "postgresql"


async def page_rows(
    sql: Executor, pages: KeysetPages, after: tuple[Any, Any] | None, /, **params: Any
) -> Sequence[Row]:
    """A page of a keyset list: its first page, or the page after the ``(key, id)`` of the
    previous page's last row."""
    if after is None:
        return await sql.rows(pages.first, **params)
    return await sql.rows(pages.resumed, after_key=after[0], after_id=after[1], **params)


# Types whose values asyncpg already sends and returns as the application wants them (UUID,
# aware UTC datetimes, Decimal with the column's scale): their SQLAlchemy processors are skipped.
_NATIVE_ON_ASYNCPG = (GUID, DateTimeUTC, Money)


@dataclass(frozen=True, slots=True)
class PgStatement:
    """A statement compiled for asyncpg: its SQL text and how to order its arguments."""

    sql: str
    # (name, processor or None, default) per positional parameter, in ``$n`` order
    parameters: tuple[tuple[str, Callable[[Any], Any] | None, Any], ...]

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        out = []
        for name, process, default in self.parameters:
            value = params.get(name, default)
            if isinstance(value, _Default):
                value = value.make(name, self.sql)
            out.append(value if process is None or value is None else process(value))
        return out


class _Default:
    """A parameter the caller did not give: a column default computed now, or a mistake."""

    __slots__ = ("make",)

    def __init__(self, make: Callable[[str, str], Any]) -> None:
        self.make = make


def _missing(name: str, sql: str) -> Any:
    raise TypeError(f"missing bind parameter {name!r} for: {sql[:120]}")


_REQUIRED = _Default(_missing)


def _column_default(column: Any, *, update: bool) -> _Default:
    """A column's Python-side default (or ``onupdate``), computed at each execution."""
    default = column.onupdate if update else column.default
    if default is None:
        return _Default(lambda _name, _sql: None)
    if default.is_callable:
        return _Default(lambda _name, _sql: default.arg(None))
    return _Default(lambda _name, _sql: default.arg)


class PgStatements:
    """Compiles each statement once for asyncpg and keeps the result for the process's lifetime."""

    def __init__(self) -> None:
        self.dialect = pg_asyncpg.dialect()  # type: ignore[no-untyped-call]
        self._compiled: dict[int, tuple[Executable, PgStatement]] = {}

    def __call__(self, statement: Executable) -> PgStatement:
        entry = self._compiled.get(id(statement))
        if entry is not None and entry[0] is statement:
            return entry[1]
        compiled = self._compile(statement)
        self._compiled[id(statement)] = (statement, compiled)  # the statement is kept: its id stays unique
        return compiled

    def _compile(self, statement: Executable) -> PgStatement:
        compiled = cast(ClauseElement, statement).compile(dialect=self.dialect)
        assert isinstance(compiled, SQLCompiler)
        if compiled.post_compile_params:  # an IN list, whose text would change with its length
            raise ValueError("compiled once means no IN (...) list: use statements.common.any_of()")
        defaults = {column.key: _column_default(column, update=False) for column in compiled.insert_prefetch}
        defaults.update({column.key: _column_default(column, update=True) for column in compiled.update_prefetch})
        parameters = []
        for name in compiled.positiontup or ():
            bind = compiled.binds[name]
            process = None if isinstance(bind.type, _NATIVE_ON_ASYNCPG) else bind.type.bind_processor(self.dialect)
            default = defaults.get(name) or (_REQUIRED if bind.required else bind.effective_value)
            parameters.append((name, process, default))
        return PgStatement(compiled.string, tuple(parameters))


def _affected(status: str) -> int:
    """The row count at the end of a command tag (``UPDATE 3``, ``INSERT 0 1``, ``DELETE 0``)."""
    tail = status.rpartition(" ")[2]
    return int(tail) if tail.isdigit() else 0


# Called with each statement's SQL and what runs it: the transaction's executor, or the pool for a read.
StatementObserver = Callable[[str, object], None]
SLOW_STATEMENT_SECONDS = 0.2
_slow_log = logging.getLogger("marketplace.slow_sql")
# The asyncpg call behind each executor method: (connection, sql, args) -> result.
_Op = Callable[[asyncpg.Connection, str, list[Any]], Awaitable[Any]]


async def _fetch(connection: asyncpg.Connection, sql: str, args: list[Any]) -> Any:
    return await connection.fetch(sql, *args)


async def _fetchrow(connection: asyncpg.Connection, sql: str, args: list[Any]) -> Any:
    return await connection.fetchrow(sql, *args)


async def _fetchval(connection: asyncpg.Connection, sql: str, args: list[Any]) -> Any:
    return await connection.fetchval(sql, *args)


async def _execute(connection: asyncpg.Connection, sql: str, args: list[Any]) -> int:
    return _affected(await connection.execute(sql, *args))


class PgRunner:
    """Compile (once), observe, time and run a statement; constraint violations become domain errors.

    Subclasses say which connection runs it (``_on``): one held for a transaction, or a pooled one.
    """

    __slots__ = ("observers", "statements")

    def __init__(self, statements: PgStatements, observers: list[StatementObserver]) -> None:
        self.statements = statements
        self.observers = observers  # tests count statements per request (``Database.observe``)

    async def _on(self, op: _Op, sql: str, args: list[Any]) -> Any:
        raise NotImplementedError

    async def _call(self, op: _Op, statement: Executable, params: Mapping[str, Any]) -> Any:
        compiled = self.statements(statement)
        args = compiled.arguments(params)
        for observe in self.observers:
            observe(compiled.sql, self)
        started = time.perf_counter()
        try:
            return await self._on(op, compiled.sql, args)
        except asyncpg.IntegrityConstraintViolationError as error:
            raise translate(error.constraint_name, str(error)) from None
        except Exception as error:
            if (outage := unavailable_from(error)) is not None:
                raise outage from error
            raise
        finally:
            elapsed = time.perf_counter() - started
            if elapsed > SLOW_STATEMENT_SECONDS:
                _slow_log.warning("slow query took %.3fs: %s", elapsed, " ".join(compiled.sql.split())[:500])

    async def rows(self, statement: Executable, /, **params: Any) -> Sequence[Row]:
        return await self._call(_fetch, statement, params)  # type: ignore[no-any-return]

    async def row(self, statement: Executable, /, **params: Any) -> Row | None:
        return await self._call(_fetchrow, statement, params)  # type: ignore[no-any-return]

    async def value(self, statement: Executable, /, **params: Any) -> Any:
        return await self._call(_fetchval, statement, params)

    async def run(self, statement: Executable, /, **params: Any) -> int:
        return await self._call(_execute, statement, params)  # type: ignore[no-any-return]


class PgExecutor(PgRunner):
    """Statements on one asyncpg connection, inside a unit of work's transaction."""

    __slots__ = ("_connection", "_savepoints")

    def __init__(
        self, connection: asyncpg.Connection, statements: PgStatements, observers: list[StatementObserver]
    ) -> None:
        super().__init__(statements, observers)
        self._connection = connection
        self._savepoints = 0

    async def _on(self, op: _Op, sql: str, args: list[Any]) -> Any:
        return await op(self._connection, sql, args)

    async def run_many(self, statement: Executable, rows: Sequence[Mapping[str, Any]], /) -> None:
        if not rows:
            return
        compiled = self.statements(statement)
        for observe in self.observers:
            observe(compiled.sql, self)
        try:
            with outages_as_unavailable():
                await self._connection.executemany(compiled.sql, [compiled.arguments(row) for row in rows])
        except asyncpg.IntegrityConstraintViolationError as error:
            raise translate(error.constraint_name, str(error)) from None

    @contextlib.asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        self._savepoints += 1
        name = f"sp{self._savepoints}"
        with outages_as_unavailable():
            await self._connection.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            if not self._connection.is_closed():
                with outages_as_unavailable():
                    await self._connection.execute(f"ROLLBACK TO SAVEPOINT {name}")
            raise
        with outages_as_unavailable():
            await self._connection.execute(f"RELEASE SAVEPOINT {name}")


class TransactionAborted(RuntimeError):
    """A commit after a refused statement (a bug: the caller went on as if nothing happened).

    Postgres aborts the whole transaction at a failed statement and answers its COMMIT with a
    ROLLBACK; SQLite undoes only the statement. Both refuse the commit, so the rule is the same:
    a refused statement ends its unit of work, unless it ran inside ``savepoint()``."""


class SqliteExecutor:
    """Statements through a SQLAlchemy connection (SQLite: its type processing, its compiled cache)."""

    __slots__ = ("_connection", "_savepoints", "aborted")

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection
        self._savepoints = 0
        self.aborted = False

    async def _execute(self, statement: Executable, params: Any) -> Any:
        try:
            with outages_as_unavailable():
                return await self._connection.execute(statement, params)
        except IntegrityError as error:
            self.aborted = self.aborted or self._savepoints == 0
            raise translate(constraint_of(error), str(error.orig)) from None

    async def rows(self, statement: Executable, /, **params: Any) -> Sequence[Row]:
        return (await self._execute(statement, params)).mappings().all()  # type: ignore[no-any-return]

    async def row(self, statement: Executable, /, **params: Any) -> Row | None:
        return (await self._execute(statement, params)).mappings().first()  # type: ignore[no-any-return]

    async def value(self, statement: Executable, /, **params: Any) -> Any:
        return (await self._execute(statement, params)).scalar()

    async def run(self, statement: Executable, /, **params: Any) -> int:
        return int((await self._execute(statement, params)).rowcount)

    async def run_many(self, statement: Executable, rows: Sequence[Mapping[str, Any]], /) -> None:
        if rows:
            await self._execute(statement, list(rows))

    @contextlib.asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        self._savepoints += 1
        try:
            async with self._connection.begin_nested():
                yield
        finally:
            self._savepoints -= 1
