"""Constructs the statements share, each rendered for Postgres and for SQLite in one place.

A statement is written once; where the two databases need different SQL for the same meaning (an
id list, a rounded average, an advisory lock), a construct here says how each renders it.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from sqlalchemy import (
    BindParameter,
    Column,
    ColumnElement,
    Integer,
    Numeric,
    Select,
    Table,
    bindparam,
    case,
    cast,
    func,
    select,
    tuple_,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ColumnClause, FunctionElement
from sqlalchemy.types import NullType, TypeEngine

# INSERT with ON CONFLICT: Postgres' construct, which SQLAlchemy renders for SQLite as well.
upsert = postgresql.insert


class AnyOf(ColumnElement[Any]):
    """``column IN (:name)`` for a list parameter: ``= ANY($n)`` with one array on Postgres (the
    text, and so the prepared statement, is the same for any length), an expanding ``IN`` on SQLite."""

    inherit_cache = True
    type: TypeEngine[Any] = NullType()

    def __init__(self, column: ColumnElement[Any], name: str, *, by_key: bool) -> None:
        self.column = column
        self.name = name
        self.by_key = by_key


def any_of(column: ColumnElement[Any], name: str, *, by_key: bool = False) -> AnyOf:
    """``by_key``: each value finds one row or a few (a key), so the plan is the same index probe
    however many values come. Postgres then gets the list as ``ARRAY(SELECT unnest($n))``, whose
    length it cannot see: every call looks alike, and the statement keeps one generic plan per
    connection. A bare ``ANY($n)`` is planned again on every call with fewer than about ten values
    (the generic plan guesses ten, so a plan for one or eight looks cheaper), which costs more than
    running it (a product's summary by one id: 0.28 → 0.09 ms of Postgres CPU a call)."""
    return AnyOf(column, name, by_key=by_key)


@compiles(AnyOf, "postgresql")
def _any_of_postgres(element: AnyOf, compiler: SQLCompiler, **kw: Any) -> str:
    array: ColumnElement[Any] = bindparam(element.name, type_=postgresql.ARRAY(element.column.type))
    if element.by_key:
        array = func.array(select(func.unnest(array)).scalar_subquery())
    return compiler.process(element.column == func.any(array), **kw)


@compiles(AnyOf)
def _any_of_default(element: AnyOf, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.column.in_(bindparam(element.name, expanding=True)), **kw)


class CentAverage(FunctionElement[Any]):
    """``sum / count`` rounded half up to the cent, 0 without a count (``domain.catalog.rating_average``):
    NUMERIC on Postgres, integer cents on SQLite (the Money column's storage there)."""

    inherit_cache = True
    name = "cent_average"


def cent_average(total: ColumnElement[Any], count: ColumnElement[Any]) -> CentAverage:
    return CentAverage(total, count)


@compiles(CentAverage, "postgresql")
def _cent_average_postgres(element: CentAverage, compiler: SQLCompiler, **kw: Any) -> str:
    total, count = element.clauses
    mean = func.round(cast(total, Numeric(14, 4)) / count, 2)
    return compiler.process(_when_counted(count, mean), **kw)


@compiles(CentAverage)
def _cent_average_default(element: CentAverage, compiler: SQLCompiler, **kw: Any) -> str:
    total, count = element.clauses
    return compiler.process(_when_counted(count, cast(func.round(total * 100.0 / count), Integer)), **kw)


def _when_counted(count: ColumnElement[Any], value: ColumnElement[Any]) -> ColumnElement[Any]:
    return case((count > 0, value), else_=0)


class AdvisoryXactLock(FunctionElement[Any]):
    """A transaction-scoped advisory lock on Postgres; nothing on SQLite, whose writers already take
    turns (the unit of work's write lock)."""

    inherit_cache = True
    name = "advisory_xact_lock"


def advisory_xact_lock(key: int) -> AdvisoryXactLock:
    return AdvisoryXactLock(bindparam("lock_key", key, type_=Integer))


@compiles(AdvisoryXactLock, "postgresql")
def _advisory_lock_postgres(element: AdvisoryXactLock, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(func.pg_advisory_xact_lock(*element.clauses), **kw)


@compiles(AdvisoryXactLock)
def _advisory_lock_default(element: AdvisoryXactLock, compiler: SQLCompiler, **kw: Any) -> str:
    return "0"


def columns(table: Table, *names: str) -> tuple[Column[Any], ...]:
    """``table``'s columns by name, in this order: what an entity or view is read from."""
    return tuple(table.c[name] for name in names)


def bound(*names: str) -> dict[str, BindParameter[Any]]:
    """An UPDATE's SET values: each column from the parameter of its own name."""
    return {name: bindparam(name) for name in names}


def typed(name: str, like: ColumnElement[Any] | ColumnClause[Any] | TypeEngine[Any]) -> BindParameter[Any]:
    """A bind parameter with a column's type (Money as cents on SQLite, UTC datetimes, GUIDs)."""
    type_ = like if isinstance(like, TypeEngine) else like.type
    return bindparam(name, type_=type_)


def before(key: ColumnElement[Any], row_id: ColumnElement[Any], *, descending: bool = True) -> ColumnElement[bool]:
    """The keyset condition ``(key, id) < (:after_key, :after_id)`` (``>`` ascending) as one row
    comparison, which the ``(…, key, id)`` indexes range-scan."""
    bound = tuple_(typed("after_key", key), typed("after_id", row_id))
    return tuple_(key, row_id) < bound if descending else tuple_(key, row_id) > bound


def keyset_order(key: ColumnElement[Any], row_id: ColumnElement[Any], *, descending: bool = True) -> tuple[Any, Any]:
    """``ORDER BY key, id`` in the direction ``before`` resumes in."""
    return (key.desc(), row_id.desc()) if descending else (key.asc(), row_id.asc())


class KeysetPages(NamedTuple):
    """A list read a page at a time, ordered by ``(key, id)``: the statement of its first page and
    the one resuming after ``(:after_key, :after_id)``, both ``LIMIT :limit``
    (``executor.page_rows`` picks one)."""

    first: Select[Any]
    resumed: Select[Any]


def keyset_pages(
    query: Select[Any], key: ColumnElement[Any], row_id: ColumnElement[Any], *, descending: bool = True
) -> KeysetPages:
    first = query.order_by(*keyset_order(key, row_id, descending=descending)).limit(bindparam("limit"))
    return KeysetPages(first, first.where(before(key, row_id, descending=descending)))
