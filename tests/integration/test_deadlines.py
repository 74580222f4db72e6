"""The request deadline: a stalled database or Redis gets a fast 503 (or, for Redis, a normal answer
from the database), never a hang, and nothing is half-written.

Nothing here touches the shared servers' other databases: the lock is taken on this run's own
Postgres database, SQLite's on a per-test file, and the "stalled Redis" is a TCP server of this test
that accepts connections and never answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import func, select

from adapters.cache.memory_cache import MemoryCache
from adapters.sql.tables import CartItemRow, OrderRow, ProductRow, table_of
from entrypoints.wiring import Container
from tests.conftest import test_settings
from tests.integration.test_faults import open_shop, serve

DEADLINE = 1.0
P, ORDERS, CART = table_of(ProductRow), table_of(OrderRow), table_of(CartItemRow)


def fast_container(database_url: str, tmp_path: Path, **extra: str) -> Container:
    return Container(
        test_settings(
            DATABASE_URL=database_url, VAR_DIR=str(tmp_path / "var"), REQUEST_DEADLINE_SECONDS=str(DEADLINE), **extra
        )
    )


async def timed(request: Awaitable[httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = await request
    return response, time.perf_counter() - started


def assert_fast_503(name: str, response: httpx.Response, took: float) -> None:
    assert response.status_code == 503, (name, response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json"), name
    assert int(response.headers["retry-after"]) > 0, name
    assert response.json()["status"] == 503 and response.headers.get("x-request-id"), name
    assert took < DEADLINE + 1, (name, took)


async def books(container: Container, product: str) -> tuple[int, int, int]:
    """Orders, cart lines and the product's stock, read on a connection of the test's own."""
    async with container.adapters.jobs.db.engine.connect() as conn:
        orders = (await conn.execute(select(func.count()).select_from(ORDERS))).scalar_one()
        lines = (await conn.execute(select(func.count()).select_from(CART))).scalar_one()
        stock = (await conn.execute(select(P.c.stock).where(P.c.id == uuid.UUID(product)))).scalar_one()
    return int(orders), int(lines), int(stock)


@contextlib.asynccontextmanager
async def products_locked(pg_url: str) -> AsyncIterator[None]:
    """``LOCK TABLE products IN ACCESS EXCLUSIVE MODE`` held from a connection of the test's own."""
    conn = await asyncpg.connect(pg_url)
    transaction = conn.transaction()
    await transaction.start()
    try:
        await conn.execute("LOCK TABLE products IN ACCESS EXCLUSIVE MODE")
        yield
    finally:
        await transaction.rollback()
        await conn.close()


async def test_a_locked_products_table_answers_503_fast_writes_nothing_and_recovers(
    clean_pg_url: str, tmp_path: Path
) -> None:
    container = fast_container(clean_pg_url, tmp_path)
    try:
        async with serve(container) as c:
            shop = await open_shop(c, container)
            in_cart, fresh = await shop.product(stock=10, name="Lamp"), await shop.product(stock=10, name="Kettle")
            buyer = await shop.buyer()
            r = await c.post("/api/cart/items", json={"product_id": in_cart, "quantity": 2}, headers=buyer)
            assert r.status_code == 201, r.text
            before = await books(container, in_cart)
            checkout = {**buyer, "Idempotency-Key": "locked-1"}

            assert isinstance(container.adapters.cache, MemoryCache)
            container.adapters.cache.clear()  # no cached copy can answer: every one of them needs the table
            async with products_locked(clean_pg_url):
                answers = await asyncio.gather(
                    timed(c.get(f"/api/products/{fresh}")),
                    timed(c.get("/api/products", params={"q": "kettle", "sort": "price_asc"})),
                    timed(c.post("/api/cart/items", json={"product_id": fresh, "quantity": 1}, headers=buyer)),
                    timed(c.post("/api/cart/checkout", headers=checkout)),
                )
                for name, (response, took) in zip(("detail", "list", "add_to_cart", "checkout"), answers, strict=True):
                    assert_fast_503(name, response, took)
                ready, took = await timed(c.get("/ready"))
                assert ready.status_code == 503 and took < 2.0, (ready.text, took)
                assert "database" in {e["field"] for e in ready.json()["errors"]}
                assert "stalled" in ready.json()["detail"]
                # A route that does not need the table still answers.
                assert (await c.get("/api/users/me", headers=buyer)).status_code == 200

            assert await books(container, in_cart) == before  # no order, cart and stock as they were

            # Released: the same requests succeed, the retried checkout once.
            assert (await c.get(f"/api/products/{fresh}")).status_code == 200
            assert (await c.get("/api/products", params={"q": "kettle", "sort": "price_asc"})).status_code == 200
            r = await c.post("/api/cart/items", json={"product_id": fresh, "quantity": 1}, headers=buyer)
            assert r.status_code == 201, r.text
            first = await c.post("/api/cart/checkout", headers=checkout)
            again = await c.post("/api/cart/checkout", headers=checkout)
            assert first.status_code == again.status_code == 201 and first.json()["id"] == again.json()["id"]
            assert await books(container, in_cart) == (before[0] + 1, 0, before[2] - 2)
            assert (await c.get("/ready")).status_code == 200
    finally:
        await container.shutdown()


async def test_a_handler_that_hangs_inside_its_transaction_is_cut_at_the_deadline(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last line of defence: nothing the database enforces, the request timer answers 503 and
    the transaction it cancels rolls back, leaving its connection (and SQLite's write turn) free."""
    from adapters.sql.repositories.orders import SqlInventoryRepository

    container = fast_container(database_url, tmp_path)
    try:
        async with serve(container) as c:
            shop = await open_shop(c, container)
            product = await shop.product(stock=10)
            buyer = await shop.buyer()
            assert (
                await c.post("/api/cart/items", json={"product_id": product, "quantity": 3}, headers=buyer)
            ).status_code == 201
            before = await books(container, product)
            real_take = SqlInventoryRepository.take_all

            async def stuck(self: SqlInventoryRepository, *args: Any) -> Any:
                await real_take(self, *args)  # stock taken inside the transaction ...
                await asyncio.sleep(60)  # ... then the handler hangs

            monkeypatch.setattr(SqlInventoryRepository, "take_all", stuck)
            response, took = await timed(c.post("/api/cart/checkout", headers={**buyer, "Idempotency-Key": "hang-1"}))
            assert_fast_503("checkout", response, took)
            assert "deadline" in response.json()["detail"]
            monkeypatch.setattr(SqlInventoryRepository, "take_all", real_take)
            assert await books(container, product) == before

            r = await asyncio.wait_for(c.post("/api/cart/checkout", headers={**buyer, "Idempotency-Key": "hang-1"}), 5)
            assert r.status_code == 201, r.text
            assert await books(container, product) == (before[0] + 1, 0, before[2] - 3)
    finally:
        await container.shutdown()


async def test_sqlite_writers_wait_for_their_turn_within_the_budget(sqlite_url: str, tmp_path: Path) -> None:
    """SQLite: a writer in this process holding the write turn, then one in another process holding
    the file's write lock: other writers answer 503 within the deadline; reads keep working."""
    container = fast_container(sqlite_url, tmp_path)
    try:
        async with serve(container) as c:
            shop = await open_shop(c, container)
            product = await shop.product(stock=10)
            buyer = await shop.buyer()
            add = {"product_id": product, "quantity": 1}

            async with container.adapters.requests.db.write_turn():  # a long unit of work in this process
                response, took = await timed(c.post("/api/cart/items", json=add, headers=buyer))
                assert_fast_503("add_to_cart (this process)", response, took)
                assert (await c.get(f"/api/products/{product}")).status_code == 200

            other_process = sqlite3.connect(sqlite_url.split(":///", 1)[1], isolation_level=None)
            try:
                other_process.execute("BEGIN IMMEDIATE")  # another process's writer holds the file
                response, took = await timed(c.post("/api/cart/items", json=add, headers=buyer))
                assert_fast_503("add_to_cart (another process)", response, took)
                assert (await c.get("/api/products", params={"sort": "price_asc"})).status_code == 200
            finally:
                other_process.execute("ROLLBACK")
                other_process.close()

            r = await c.post("/api/cart/items", json=add, headers=buyer)
            assert r.status_code == 201, r.text
            assert (await books(container, product))[1] == 1
    finally:
        await container.shutdown()


class SilentServer:
    """A TCP server on 127.0.0.1 that accepts connections and never answers (a stalled Redis)."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> str:
        async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.writers.append(writer)  # kept open, never written to

        self.server = await asyncio.start_server(accept, "127.0.0.1", 0)
        return f"redis://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/0"

    async def __aexit__(self, *_exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.transport.abort()
        await self.server.wait_closed()


async def test_a_stalled_redis_costs_no_request_its_deadline(clean_pg_url: str, tmp_path: Path) -> None:
    async with SilentServer() as redis_url:
        container = fast_container(clean_pg_url, tmp_path, REDIS_URL=redis_url)
        try:
            async with serve(container) as c:
                slowest: dict[str, float] = {}

                async def call(name: str, request: Awaitable[httpx.Response], *expected: int) -> httpx.Response:
                    response, took = await timed(request)
                    assert response.status_code in expected, (name, response.status_code, response.text)
                    slowest[name] = max(slowest.get(name, 0.0), took)
                    return response

                shop = await open_shop(c, container)  # registrations, logins: the key-value store and rate limits
                product = await shop.product(stock=10)
                buyer = await shop.buyer()
                for _ in range(3):
                    await call("detail", c.get(f"/api/products/{product}"), 200)
                    await call("list", c.get("/api/products", params={"sort": "newest"}), 200)
                    await call("search", c.get("/api/products", params={"q": "widget"}), 200)
                await call(
                    "add_to_cart",
                    c.post("/api/cart/items", json={"product_id": product, "quantity": 1}, headers=buyer),
                    201,
                )
                key = {**buyer, "Idempotency-Key": "silent-redis"}
                order = await call(
                    "checkout", c.post("/api/cart/checkout", headers=key), 201
                )  # jobs wait in the outbox
                again = await call("checkout", c.post("/api/cart/checkout", headers=key), 201)
                assert again.json()["id"] == order.json()["id"]
                await call("logout", c.post("/api/auth/logout", headers=buyer), 204)
                await call("revoked", c.get("/api/users/me", headers=buyer), 401)
                assert all(took < DEADLINE for took in slowest.values()), slowest

                ready, took = await timed(c.get("/ready"))
                assert ready.status_code == 503 and took < 2.0, (ready.text, took)
                assert {"cache", "queue", "worker"} <= {e["field"] for e in ready.json()["errors"]}
                assert "database" not in {e["field"] for e in ready.json()["errors"]}
                metrics, took = await timed(c.get("/metrics"))
                assert metrics.status_code == 200 and took < 2.0
        finally:
            await container.shutdown()
