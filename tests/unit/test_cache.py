"""The in-process cache (LRU + TTL + versioned namespaces) and the cache-aside helper."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from adapters.cache.memory_cache import MemoryCache
from application.caching import cached, struct_codec, versioned_key


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_get_set_delete_and_ttl() -> None:
    clock = Clock()
    cache = MemoryCache(clock=clock)
    assert await cache.get("a") is None
    await cache.set("a", b"1", 10)
    assert await cache.get("a") == b"1"
    clock.now += 9.9
    assert await cache.get("a") == b"1"
    clock.now += 0.2
    assert await cache.get("a") is None
    await cache.set("b", b"2", 10)
    await cache.delete("b")
    assert await cache.get("b") is None
    assert (cache.hits, cache.misses) == (2, 3)


async def test_lru_bounds_entries_and_bytes() -> None:
    cache = MemoryCache(max_entries=3, max_bytes=10)
    for key in "abc":
        await cache.set(key, b"x", 60)
    await cache.get("a")  # a is now the most recently used
    await cache.set("d", b"x", 60)
    assert await cache.get("b") is None and await cache.get("a") == b"x"
    await cache.set("big", b"0123456789", 60)  # fills all 10 bytes: everything else goes
    assert len(cache) == 1 and await cache.get("big") is not None
    await cache.set("huge", b"x" * 11, 60)  # larger than the whole cache: not stored
    assert await cache.get("huge") is None
    assert cache.stats()["bytes"] <= 10


async def test_bump_moves_a_namespace_to_a_new_version() -> None:
    cache = MemoryCache()
    assert await cache.version("products") == 0
    await cache.bump("products")
    await cache.bump("products")
    assert await cache.version("products") == 2
    assert await cache.version("categories") == 0
    assert await versioned_key(cache, "products", "p1") == "products:v2:p1"


class Item(msgspec.Struct):
    id: int
    name: str


async def test_cached_loads_once_then_hits_and_bump_invalidates() -> None:
    cache = MemoryCache()
    loads = 0

    async def load() -> Item:
        nonlocal loads
        loads += 1
        return Item(1, f"v{loads}")

    encode, decode = struct_codec(Item)
    first = await cached(cache, "item:1", 60, load, encode, decode, namespace="items")
    again = await cached(cache, "item:1", 60, load, encode, decode, namespace="items")
    assert first == again == Item(1, "v1") and loads == 1
    await cache.bump("items")
    fresh = await cached(cache, "item:1", 60, load, encode, decode, namespace="items")
    assert fresh == Item(1, "v2") and loads == 2


async def test_concurrent_misses_share_one_load() -> None:
    cache = MemoryCache()
    loads = 0

    async def slow_load() -> int:
        nonlocal loads
        loads += 1
        await asyncio.sleep(0.05)
        return 42

    results = await asyncio.gather(
        *(cached(cache, "hot", 60, slow_load, lambda v: str(v).encode(), lambda b: int(b)) for _ in range(20))
    )
    assert results == [42] * 20 and loads == 1


async def test_loader_errors_propagate_and_nothing_is_cached() -> None:
    cache = MemoryCache()

    async def broken() -> int:
        raise LookupError("gone")

    with pytest.raises(LookupError):
        await cached(cache, "k", 60, broken, lambda v: b"", lambda b: 0)
    assert len(cache) == 0


async def test_undecodable_entry_counts_as_a_miss() -> None:
    cache = MemoryCache()
    await cache.set("item:1", b"not json", 60)
    encode, decode = struct_codec(Item)

    async def load() -> Item:
        return Item(1, "ok")

    assert await cached(cache, "item:1", 60, load, encode, decode) == Item(1, "ok")
    assert await cache.get("item:1") == encode(Item(1, "ok"))
