"""A readiness probe of the database on a connection of its own (never the request pool).

It reads one row of each table the request paths depend on, so a table locked against readers
(``LOCK TABLE``, a long ``ALTER TABLE``) shows as stalled, not only a server that is down; the
server ends the probe after ``timeout`` seconds (statement and lock timeouts), the caller's timer
covers a server that does not answer at all.
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
        if url.startswith("postgresql"):
            budget = Budget(statement_seconds=timeout, lock_seconds=timeout, acquire_seconds=timeout)
            connect_args["server_settings"] = {"application_name": "marketplace-ready", **budget.server_settings()}
        # NullPool: a fresh connection per probe, closed after it (what a restarted server needs).
        self.engine = create_async_engine(url, poolclass=NullPool, connect_args=connect_args)

    async def __call__(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(PROBE)

    async def close(self) -> None:
        await self.engine.dispose()
