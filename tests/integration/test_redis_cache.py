"""The Redis cache when Redis dies, stalls and comes back: never raises, misses fast, recovers.

A small TCP proxy in front of the real Redis lets the test cut the connection (refused), stall
it (accepts but never answers) and restore it on the same port, against one cache instance.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlparse

import pytest
from redis.asyncio import Redis

from adapters.cache.redis_cache import RedisCache
from application.caching import cached
from tests.conftest import REDIS_URL
from tests.integration.redis_wire import count_redis_requests


class Proxy:
    """Forwards TCP to Redis; ``stall`` swallows traffic without answering."""

    def __init__(self) -> None:
        target = urlparse(REDIS_URL)
        self.target = (target.hostname or "127.0.0.1", target.port or 6379)
        self.port = 0
        self.stall = False
        self.server: asyncio.Server | None = None
        self.pipes: set[asyncio.Task[None]] = set()
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Refuse new connections and cut the open ones (Redis is gone)."""
        assert self.server is not None
        self.server.close()
        for writer in list(self.writers):
            writer.close()
        for task in list(self.pipes):
            task.cancel()
        await self.server.wait_closed()
        self.server = None

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.writers |= {writer, up_writer}
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(src, dst))
            self.pipes.add(task)
            task.add_done_callback(self.pipes.discard)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                if not self.stall:
                    dst.write(data)
                    await dst.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            dst.close()


@pytest.fixture
async def proxy() -> AsyncIterator[Proxy]:
    p = Proxy()
    await p.start()
    yield p
    if p.server is not None:
        await p.stop()


def make_cache(port: int, **kw: float) -> tuple[RedisCache, Redis]:
    """A cache with a relaxed deadline for set-up on a busy test machine; tests tighten it to 50 ms."""
    client = Redis.from_url(f"redis://127.0.0.1:{port}/0", socket_timeout=0.25, socket_connect_timeout=0.25)
    return RedisCache(client, prefix=f"test-cache:{uuid.uuid4().hex}:", **{"timeout": 1.0, **kw}), client


async def forget(cache: RedisCache) -> None:
    client = Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{cache.prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def timed(coro: object) -> tuple[object, float]:
    started = time.perf_counter()
    result = await coro  # type: ignore[misc]
    return result, time.perf_counter() - started


async def test_live_cache_round_trip_and_versions(proxy: Proxy) -> None:
    cache, client = make_cache(proxy.port)
    try:
        await cache.set("a", b"1", 5)
        assert await cache.get("a") == b"1" and await cache.get("missing") is None
        await cache.delete("a")
        assert await cache.get("a") is None
        first = await cache.version("products")
        assert await cache.version("products") == first  # stable until bumped
        await cache.bump("products")
        assert await cache.version("products") != first
        loads = 0

        async def load() -> bytes:
            nonlocal loads
            loads += 1
            return b"row"

        for _ in range(3):
            assert await cached(cache, "p:1", 5, load, bytes, bytes, namespace="products") == b"row"
        assert loads == 1 and cache.stats()["hits"] >= 2
    finally:
        await client.aclose()
        await forget(cache)


async def test_outage_misses_fast_logs_once_and_recovers(proxy: Proxy, caplog: pytest.LogCaptureFixture) -> None:
    cache, client = make_cache(proxy.port, min_backoff=0.2, max_backoff=0.4)
    caplog.set_level(logging.INFO, logger="adapters.cache.redis_cache")
    try:
        await cache.set("kept", b"value", 60)
        assert await cache.get("kept") == b"value"
        before = await cache.version("products")
        feed_before = await cache.version("feed:u")
        cache.timeout = 0.05

        await proxy.stop()  # Redis is gone: refused connections
        timings = []
        for i in range(200):
            value, took = await timed(cache.get("kept"))
            assert value is None
            await cache.set(f"k{i}", b"x", 60)  # dropped, never raises
            timings.append(took)
        await cache.bump("products")  # lost for now, replayed on recovery
        await cache.invalidate(keys=["kept-too"], namespaces=["feed:u"])  # likewise
        # The 50 ms deadline plus scheduling on a loaded machine, even the first call (a hang is seconds).
        assert max(timings) < 0.3, max(timings)
        assert sorted(timings)[len(timings) // 2] < 0.001  # while marked down: no Redis call at all
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "cache unavailable" in warnings[0].getMessage()
        assert cache.down and cache.errors >= 1

        await proxy.start()  # Redis is back on the same port
        await asyncio.sleep(0.45)  # past the backoff
        deadline = time.monotonic() + 3
        while await cache.get("kept") != b"value":
            assert time.monotonic() < deadline, "cache did not recover"
            await asyncio.sleep(0.05)
        assert not cache.down
        assert await cache.version("products") != before  # the bump made during the outage was replayed
        assert await cache.version("feed:u") != feed_before
        assert any("available again" in r.getMessage() for r in caplog.records)
        assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
    finally:
        await client.aclose()
        await forget(cache)


async def test_bumps_lost_in_an_outage_are_replayed_in_one_round_trip(
    proxy: Proxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every checkout during an outage loses its buyer's feed bump: the first call after Redis is
    back replays them all at once, not one round trip each (which held a request for seconds)."""
    cache, client = make_cache(proxy.port, min_backoff=0.2, max_backoff=0.4)
    try:
        feeds = [f"feed:{n}" for n in range(500)]
        before = {ns: await cache.version(ns) for ns in feeds[:3]}
        cache.timeout = 0.05
        await proxy.stop()
        for ns in feeds:
            await cache.invalidate(keys=["p:1"], namespaces=[ns])  # lost, kept for the recovery
        assert cache.down
        await proxy.start()
        await asyncio.sleep(0.45)  # past the backoff
        sent = count_redis_requests(monkeypatch)
        deadline = time.monotonic() + 3
        while await cache.get("p:1") is not None or cache.down:
            assert time.monotonic() < deadline, "cache did not recover"
            await asyncio.sleep(0.05)
        assert len(sent) < 10, len(sent)  # reconnect, probe, one batch: a handful, not one per namespace
        monkeypatch.undo()
        assert [await cache.version(ns) != version for ns, version in before.items()] == [True] * 3
    finally:
        await client.aclose()
        await forget(cache)


async def test_stalled_redis_costs_a_few_deadlines_then_nothing(proxy: Proxy) -> None:
    cache, client = make_cache(proxy.port, min_backoff=5)
    try:
        await cache.set("a", b"1", 60)
        assert await cache.get("a") == b"1"
        cache.timeout = 0.05
        proxy.stall = True  # accepts and reads, never answers
        late = [await timed(cache.get("a")) for _ in range(cache.late_limit)]
        assert all(value is None and 0.04 < took < 0.3 for value, took in late), late  # the deadline, not a hang
        assert cache.down  # three late answers in a row: marked down
        rest = [(await timed(cache.get("a")))[1] for _ in range(100)]
        assert max(rest) < 0.03, max(rest)  # no Redis call: a call would wait out the 50 ms deadline
    finally:
        await client.aclose()
        await forget(cache)


async def test_dead_port_from_the_start() -> None:
    cache, client = make_cache(1, timeout=0.05)
    try:
        started = time.perf_counter()
        for _ in range(50):
            assert await cache.get("x") is None
            await cache.set("x", b"1", 1)
            await cache.bump("ns")
            assert await cache.version("ns") == 0
        assert time.perf_counter() - started < 0.2
    finally:
        await client.aclose()
        await forget(cache)


async def test_a_lost_version_key_never_brings_back_old_entries(proxy: Proxy) -> None:
    """If Redis evicts a namespace's version key, the next version is a new one, not an old one."""
    cache, client = make_cache(proxy.port)
    try:
        seen = {await cache.version("products")}
        for _ in range(20):
            await client.delete(cache.prefix + "ns:products")  # evicted
            seen.add(await cache.version("products"))
        assert len(seen) == 21
    finally:
        await client.aclose()
        await forget(cache)
