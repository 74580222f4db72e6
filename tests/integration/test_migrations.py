"""Migrations: up, down and up again on both databases, and no drift from the table definitions."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from advanced_alchemy.alembic.commands import AlembicCommands
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from adapters.sql.database import migrations, open_database
from adapters.sql.tables import metadata


def _in_thread(fn: Any) -> Any:
    result: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.append(fn())
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0] if result else None


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_url(request: pytest.FixtureRequest, tmp_path) -> Any:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'stairs.db'}"
        return
    import uuid

    import asyncpg

    from tests.conftest import PG_ADMIN_URL

    name = f"mkt_stairs_{uuid.uuid4().hex[:8]}"
    admin = PG_ADMIN_URL.replace("postgresql+asyncpg", "postgresql")

    async def admin_exec(sql: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    _in_thread(lambda: asyncio.run(admin_exec(f'CREATE DATABASE "{name}"')))
    yield admin.rsplit("/", 1)[0] + f"/{name}"
    _in_thread(lambda: asyncio.run(admin_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')))


def _commands(url: str) -> AlembicCommands:
    return migrations(url)


def test_stairway_up_down_up(fresh_url: str) -> None:
    _in_thread(lambda: _commands(fresh_url).upgrade("head"))
    _in_thread(lambda: _commands(fresh_url).downgrade("base"))
    _in_thread(lambda: _commands(fresh_url).upgrade("head"))


def test_models_match_migrations(fresh_url: str) -> None:
    _in_thread(lambda: _commands(fresh_url).upgrade("head"))
    db = open_database(fresh_url, pooled=False)

    def diff(sync_conn: Any) -> list[Any]:
        context = MigrationContext.configure(sync_conn, opts={"compare_type": False})
        return compare_metadata(context, metadata)

    async def run() -> list[Any]:
        async with db.engine.connect() as conn:
            return await conn.run_sync(diff)

    changes = _in_thread(lambda: asyncio.run(run()))
    # Expression indexes cannot be reflected on SQLite; everything else must match exactly.
    relevant = [
        c
        for c in changes
        if "lower" not in repr(c)
        and "products_fts" not in repr(c)
        and "search_vector" not in repr(c)
        and "ix_products_search" not in repr(c)
    ]
    assert relevant == []
