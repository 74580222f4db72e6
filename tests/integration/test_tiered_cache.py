"""The first-level cache stays coherent across processes (two caches on one Redis stand in for two).

Each test gets its own key prefix and channel, so runs never collide.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio import Redis

from adapters.cache.memory_cache import MemoryCache
from adapters.cache.redis_cache import RedisCache
from adapters.cache.tiered import TieredCache
from application.caching import cached
from tests.conftest import REDIS_URL


async def eventually(check: Callable[[], bool], seconds: float = 2.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


@pytest.fixture
async def pair() -> AsyncIterator[tuple[TieredCache, TieredCache]]:
    prefix = f"test:{uuid.uuid4().hex}:"
    clients = [Redis.from_url(REDIS_URL, socket_timeout=1, client_name=f"{prefix}{n}") for n in "ab"]
    caches = [
        TieredCache(MemoryCache(), RedisCache(client, prefix=prefix), channel=prefix + "inv", retry_seconds=0.05)
        for client in clients
    ]
    for cache in caches:
        await cache.get("warm-up")  # starts the listener
    await eventually(lambda: all(cache.subscribed for cache in caches))
    yield caches[0], caches[1]
    for cache, client in zip(caches, clients, strict=True):
        await cache.close()
        await client.delete(*[key async for key in client.scan_iter(prefix + "*")] or ["none"])
        await client.aclose()


async def test_a_delete_in_one_process_empties_the_others_local_tier(pair: tuple[TieredCache, TieredCache]) -> None:
    a, b = pair
    assert await b.get("product:1") is None
    await b.set("product:1", b"old", 60)
    assert b.local.stats()["entries"] == 1  # b now answers from memory
    await a.delete("product:1")
    await eventually(lambda: b.local.stats()["entries"] == 0)
    assert await b.get("product:1") is None


async def test_a_bump_reaches_the_other_process(pair: tuple[TieredCache, TieredCache]) -> None:
    a, b = pair
    before = await b.version("listings")
    assert await b.version("listings") == before  # now from b's memory
    await a.bump("listings")
    await eventually(lambda: "listings" not in b._versions)
    assert await b.version("listings") != before


async def test_one_invalidate_reaches_every_tier_of_the_other_process(pair: tuple[TieredCache, TieredCache]) -> None:
    """What a checkout tells the cache: two products, the listings and the buyer's feed, at once."""
    a, b = pair
    for key in ("product:3", "product:4", "product:5"):
        await b.set(key, b"old", 60)
    listings, feed = await b.version("listings"), await b.version("feed:u")
    await a.invalidate(keys=["product:3", "product:4"], namespaces=["listings", "feed:u"])
    await eventually(lambda: "listings" not in b._versions and "feed:u" not in b._versions)
    assert await b.get("product:3") is None and await b.get("product:4") is None
    assert await b.get("product:5") == b"old"  # not named: kept
    assert await b.version("listings") != listings and await b.version("feed:u") != feed
    assert await a.get("product:3") is None  # and gone from Redis


async def test_a_load_that_raced_a_write_is_not_kept_locally(pair: tuple[TieredCache, TieredCache]) -> None:
    a, b = pair
    assert await b.get("product:2") is None  # b starts loading the old row ...
    await a.delete("product:2")  # ... a writes and invalidates meanwhile ...
    await eventually(lambda: b._generation > 0)
    await b.set("product:2", b"old", 60)  # ... b's load finishes with the old value
    assert b.local.stats()["entries"] == 0


async def test_values_read_from_redis_are_then_served_from_memory(pair: tuple[TieredCache, TieredCache]) -> None:
    a, b = pair
    calls = 0

    async def load() -> bytes:
        nonlocal calls
        calls += 1
        return b"row"

    def same(value: bytes) -> bytes:
        return value

    assert await cached(a, "product:3", 60, load, same, same) == b"row"
    assert await cached(b, "product:3", 60, load, same, same) == b"row"  # from Redis, kept locally
    hits_before = b.shared.stats()["hits"]
    assert await cached(b, "product:3", 60, load, same, same) == b"row"
    assert calls == 1 and b.shared.stats()["hits"] == hits_before  # no Redis round trip


async def test_a_lost_channel_turns_the_local_tier_off_until_it_is_back(
    pair: tuple[TieredCache, TieredCache],
) -> None:
    a, b = pair
    assert await b.get("product:4") is None
    await b.set("product:4", b"v1", 60)
    killer = Redis.from_url(REDIS_URL)
    try:  # cut b's subscription only (other test runs share this Redis)
        name = b.shared.prefix + "b"
        for client in await killer.client_list(_type="pubsub"):
            if client["name"] == name:
                await killer.client_kill_filter(_id=client["id"])
    finally:
        await killer.aclose()
    await eventually(lambda: not b.subscribed or b.local.stats()["entries"] == 0)
    assert b.local.stats()["entries"] == 0  # whatever it held may have missed an invalidation
    await eventually(lambda: a.subscribed and b.subscribed)
    await a.delete("product:4")
    assert await b.get("product:4") is None


async def test_the_process_local_view_keeps_values_out_of_redis_under_the_same_invalidations(
    pair: tuple[TieredCache, TieredCache],
) -> None:
    a, b = pair
    details_a, details_b = a.process_local(), b.process_local()
    for details in (details_a, details_b):
        assert await details.get("product:5") is None
        await details.set("product:5", b"row", 60)
        assert await details.get("product:5") == b"row"  # from memory
    assert await a.shared.get("product:5") is None  # never written to Redis
    # the view's own miss is counted too (the /metrics cache gauge), beside Redis' misses
    assert a.stats()["misses"] == a.shared.stats()["misses"] + 1
    await details_a.delete("product:5")  # a write in process a ...
    await eventually(lambda: b.local.stats()["entries"] == 0)  # ... reaches process b
    assert await details_b.get("product:5") is None


async def test_namespace_versions_kept_in_memory_are_bounded(pair: tuple[TieredCache, TieredCache]) -> None:
    a, _ = pair
    a.max_versions = 3
    versions = {f"feed:{n}": await a.version(f"feed:{n}") for n in range(7)}  # one namespace per user
    assert len(a._versions) <= 3
    assert {ns: await a.version(ns) for ns in versions} == versions  # the rest read again from Redis
