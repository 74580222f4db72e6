"""A readiness probe of the database on a connection of its own (never the request pool).

It reads one row of each table the request paths depend on, so a table locked against readers
(``LOCK TABLE``, a long ``ALTER TABLE``) shows as stalled, not only a server that is down.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from adapters.sql.budget import Budget
from adapters.sql.database import normalize_url

PROBED_TABLES = ("users", "products", "cart_items", "orders", "outbox")
PROBE = text("SELECT " + ", ".join(f"(SELECT 1 FROM {table} LIMIT 1)" for table in PROBED_TABLES))  # noqa: S608 - constant table names


class DatabaseProbe:
    def __init__(self, url: str, *, timeout: float) -> None:
        url = normalize_url(url)
        connect_args: dict[str, Any] = {"timeout": timeout}
        pool: dict[str, Any] = {"poolclass": NullPool}  # SQLite: a fresh connection is nearly free
        if url.startswith("postgresql"):
            # The caller's timer (``timeout``) ends a probe that waits and calls it stalled; the server
            # ends the abandoned statement a little later.
            late = timeout + 0.5
            budget = Budget(statement_seconds=late, lock_seconds=late, acquire_seconds=timeout)
            connect_args["server_settings"] = {"application_name": "marketplace-ready", **budget.server_settings()}
            # A pool of its own, kept small: a probe is one round trip on a loaded machine instead of
            # a new connection each time; pre-ping replaces a connection a restart ended.
            pool = {"pool_size": 1, "max_overflow": 2, "pool_timeout": timeout, "pool_pre_ping": True}
        self.engine = create_async_engine(url, connect_args=connect_args, **pool)

    async def __call__(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(PROBE)

    async def close(self) -> None:
        await self.engine.dispose()
