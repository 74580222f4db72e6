"""Cached reads never outlive the write that changed them (in-process cache and Redis)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from tests.conftest import REDIS_URL, test_settings
from tests.helpers import admin_headers, user_headers


@pytest.fixture(params=["memory-cache", "redis-cache"])
async def cached_client(request: pytest.FixtureRequest, database_url: str, tmp_path) -> Any:
    import httpx

    from entrypoints.http.app import create_app
    from entrypoints.wiring import Container

    extra = {}
    if request.param == "redis-cache":
        extra = {
            "REDIS_URL": REDIS_URL,
            "REDIS_KEY_PREFIX": f"test-{uuid.uuid4().hex[:8]}:",
            "JOB_QUEUE_NAME": f"test-{uuid.uuid4().hex[:8]}",
            # a loaded test machine may answer a Redis call in more than the production 50 ms;
            # these tests are about coherence, so a late answer must not turn into a miss here
            "CACHE_TIMEOUT_SECONDS": "2",
        }
    container = Container(test_settings(DATABASE_URL=database_url, VAR_DIR=str(tmp_path / "var"), **extra))
    app = create_app(container.settings, container=container)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000") as c:
        yield c, container
    await container.shutdown()


async def test_every_write_shows_in_the_next_read(cached_client) -> None:
    client, container = cached_client
    _, admin = await admin_headers(client, container)
    seller, seller_h = await user_headers(client)
    _, buyer_h = await user_headers(client)
    category = (
        await client.post("/api/categories", json={"name": f"Cat {uuid.uuid4().hex[:6]}"}, headers=admin)
    ).json()

    async def categories_count() -> int:
        rows = (await client.get("/api/categories")).json()
        return next(c["product_count"] for c in rows if c["id"] == category["id"])

    async def first_page_ids() -> list[str]:
        page = (await client.get(f"/api/products?category_id={category['id']}")).json()
        return [p["id"] for p in page["items"]]

    async def search_ids() -> list[str]:
        page = (await client.get("/api/products?q=kettle")).json()
        return [p["id"] for p in page["items"]]

    assert await categories_count() == 0
    assert await first_page_ids() == []
    assert await search_ids() == []  # a cached empty search page ...
    profile = (await client.get(f"/api/users/{seller['id']}")).json()
    assert profile["product_count"] == 0

    product = (
        await client.post(
            "/api/products",
            json={
                "name": "Kettle",
                "description": "boils",
                "price": "20.00",
                "category_id": category["id"],
                "stock": 3,
            },
            headers=seller_h,
        )
    ).json()
    pid = product["id"]
    assert await categories_count() == 1
    assert await first_page_ids() == [pid]
    assert await search_ids() == [pid]  # ... is gone once the product is listed
    assert (await client.get(f"/api/users/{seller['id']}")).json()["product_count"] == 1

    assert (await client.get(f"/api/products/{pid}")).json()["price"] == "20.00"  # now cached
    await client.patch(f"/api/products/{pid}", json={"price": "25.50"}, headers=seller_h)
    assert (await client.get(f"/api/products/{pid}")).json()["price"] == "25.50"

    await client.post(f"/api/products/{pid}/reviews", json={"rating": 4, "comment": "ok"}, headers=buyer_h)
    detail = (await client.get(f"/api/products/{pid}")).json()
    assert detail["review_count"] == 1
    assert detail["rating_avg"] == 4

    await client.put(f"/api/favorites/{pid}", headers=buyer_h)
    assert (await client.get(f"/api/products/{pid}")).json()["favorite_count"] == 1

    await client.post("/api/cart/items", json={"product_id": pid, "quantity": 2}, headers=buyer_h)
    order = (await client.post("/api/cart/checkout", headers=buyer_h)).json()
    assert (await client.get(f"/api/products/{pid}")).json()["stock"] == 1
    await client.post(f"/api/orders/{order['id']}/cancel", headers=buyer_h)
    assert (await client.get(f"/api/products/{pid}")).json()["stock"] == 3

    assert (await client.delete(f"/api/products/{pid}", headers=seller_h)).status_code == 204
    assert (await client.get(f"/api/products/{pid}")).status_code == 404
    assert await first_page_ids() == []
    assert await categories_count() == 0


async def test_reads_are_served_from_the_cache(cached_client) -> None:
    client, container = cached_client
    _, admin = await admin_headers(client, container)
    _, seller_h = await user_headers(client)
    category = (await client.post("/api/categories", json={"name": f"C {uuid.uuid4().hex[:6]}"}, headers=admin)).json()
    pid = (
        await client.post(
            "/api/products",
            json={
                "name": "Lamp",
                "description": "",
                "price": "9.99",
                "category_id": category["id"],
            },
            headers=seller_h,
        )
    ).json()["id"]
    await client.get(f"/api/products/{pid}")
    # Details are cached in the process only, which serves once the invalidation channel is
    # subscribed (the first read starts the subscription; a loaded machine takes a while).
    cache = container.adapters.cache
    for _ in range(100):
        if getattr(cache, "subscribed", True):
            break
        await asyncio.sleep(0.05)
    await client.get(f"/api/products/{pid}")
    hits_before = cache.stats()["hits"]
    for _ in range(5):
        assert (await client.get(f"/api/products/{pid}")).status_code == 200
    stats = container.adapters.cache.stats()
    assert stats["hits"] >= hits_before + 5, stats
