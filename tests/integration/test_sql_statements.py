"""Every statement in ``adapters.sql.statements`` compiles once for asyncpg and (but for the Postgres
forms, ``*_POSTGRES``) runs through SQLAlchemy on SQLite: no IN list that changes the text with its
length, no parameter a SQLite UPDATE would take for a SET value, every listing shape valid on both
databases."""

from __future__ import annotations

import importlib
import itertools
import pkgutil
from typing import Any

import pytest
from sqlalchemy import ClauseElement, Executable
from sqlalchemy.dialects.sqlite import aiosqlite
from sqlalchemy.sql.dml import UpdateBase

import adapters.sql.statements as statements_package
from adapters.sql.executor import PgStatements
from adapters.sql.statements.common import KeysetPages
from adapters.sql.statements.products import ListingShape, listing
from application.views.catalog import ProductSort


def _statements() -> list[tuple[str, Any]]:
    found = []
    for module_info in pkgutil.iter_modules(statements_package.__path__):
        module = importlib.import_module(f"{statements_package.__name__}.{module_info.name}")
        for name, value in vars(module).items():
            if name.startswith("_"):
                continue
            if isinstance(value, KeysetPages):  # a list's two statements
                value = value._asdict()
            values = value.items() if isinstance(value, dict) else [("", value)]
            for key, item in values:
                if isinstance(item, Executable) and isinstance(item, ClauseElement):
                    found.append((f"{module_info.name}.{name}{f'[{key}]' if key else ''}", item))
    return found


STATEMENTS = _statements()


def test_the_package_holds_the_statements() -> None:
    assert len(STATEMENTS) > 100


@pytest.mark.parametrize(("name", "statement"), STATEMENTS, ids=[name for name, _ in STATEMENTS])
def test_compiles_for_both_databases(name: str, statement: Any) -> None:
    compiled = PgStatements()(statement)
    assert ("POSTCOMPILE" not in compiled.sql and "$" in compiled.sql) or not compiled.parameters
    # SQLAlchemy compiles for SQLite with the parameters' names as the execution's keys: a
    # parameter named after a column of the written table would be taken for a SET value.
    names = [parameter for parameter, _, _ in compiled.parameters]
    if "_POSTGRES" in name:  # a Postgres form (``DialectAdapter``): SQLite runs other statements
        return
    statement.compile(dialect=aiosqlite.dialect(), column_keys=names if isinstance(statement, UpdateBase) else None)


def test_every_listing_shape_compiles_on_both_databases() -> None:
    pg = PgStatements()
    shapes = itertools.product(
        ("postgresql", "sqlite"), ProductSort, (False, True), (0, 1, 2), (False, True), (None, True), (False, True)
    )
    count = 0
    for dialect, sort, search, category, bounds, in_stock, after in shapes:
        if sort is ProductSort.RELEVANCE and not search:
            with pytest.raises(ValueError, match="relevance"):
                listing(ListingShape(dialect, sort, search=search))
            continue
        shape = ListingShape(
            dialect,
            sort,
            search=search,
            category=category,
            seller=bounds,
            min_price=bounds,
            max_price=bounds,
            in_stock=in_stock,
            after=after,
        )
        statement = listing(shape)
        assert listing(shape) is statement  # one statement object per shape: compiled once
        if dialect == "postgresql":
            assert "POSTCOMPILE" not in pg(statement).sql
        else:
            statement.compile(dialect=aiosqlite.dialect())
        count += 1
    assert count == 2 * 4 * 2 * 3 * 2 * 2 * 2 + 2 * 3 * 2 * 2 * 2
