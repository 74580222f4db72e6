"""The key-value store's failover: in-process while Redis fails, revocations copied back on recovery."""

from __future__ import annotations

import logging

import pytest

from adapters.kv.failover import FailoverKeyValueStore
from adapters.kv.memory import MemoryKeyValueStore


class FlakyStore(MemoryKeyValueStore):
    """A primary that fails every call while ``down``."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.calls = 0

    def _check(self) -> None:
        self.calls += 1
        if self.down:
            raise ConnectionError("Redis is gone")

    async def get(self, key: str) -> bytes | None:
        self._check()
        return await super().get(key)

    async def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        self._check()
        await super().set(key, value, ttl_seconds)

    async def incr(self, key: str, ttl_seconds: int) -> int:
        self._check()
        return await super().incr(key, ttl_seconds)


async def test_outage_uses_local_state_backs_off_and_replays_revocations(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    primary = FlakyStore()
    kv = FailoverKeyValueStore(primary, min_backoff=1.0, max_backoff=4.0, clock=lambda: now[0])
    await kv.set("revoked-jti:old", b"1", 900)
    assert await kv.get("revoked-jti:old") == b"1"

    primary.down = True
    caplog.set_level(logging.INFO, logger="adapters.kv.failover")
    await kv.set("revoked-jti:new", b"1", 900)  # a logout during the outage
    assert await kv.get("revoked-jti:new") == b"1" and kv.down
    assert await kv.incr("login-failures:bob", 60) == 1
    assert await kv.incr("login-failures:bob", 60) == 2
    calls = primary.calls
    for _ in range(50):
        await kv.get("revoked-jti:new")
    assert primary.calls == calls  # backing off: Redis is not even tried
    now[0] = 1.5
    assert await kv.get("revoked-jti:new") == b"1"  # one probe, still down: the backoff doubles
    assert primary.calls == calls + 1
    now[0] = 3.0
    await kv.get("x")
    assert primary.calls == calls + 1
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1

    primary.down = False
    now[0] = 10.0
    assert await kv.get("revoked-jti:old") == b"1" and not kv.down
    assert await primary.get("revoked-jti:new") == b"1"  # copied to Redis for the other processes
    assert 890 <= await primary.ttl("revoked-jti:new") <= 900
    assert any("available again" in r.getMessage() for r in caplog.records)


async def test_a_failed_copy_is_tried_again_after_the_next_recovery() -> None:
    now = [0.0]
    primary = FlakyStore()
    kv = FailoverKeyValueStore(primary, clock=lambda: now[0])
    primary.down = True
    await kv.set("revoked-jti:a", b"1", 900)
    primary.down = False
    real_set = primary.set
    failing = {"left": 1}

    async def set_once_failing(key: str, value: bytes, ttl_seconds: int) -> None:
        if failing["left"]:
            failing["left"] = 0
            raise ConnectionError("blip")
        await real_set(key, value, ttl_seconds)

    primary.set = set_once_failing  # type: ignore[method-assign]
    now[0] = 2.0
    await kv.get("anything")  # recovers; the copy fails once
    assert await primary.get("revoked-jti:a") is None
    primary.down = True
    now[0] = 3.0
    await kv.get("anything")
    primary.down = False
    now[0] = 10.0
    await kv.get("anything")
    assert await primary.get("revoked-jti:a") == b"1"


async def test_many_revocations_are_copied_back_concurrently_in_bounded_batches() -> None:
    """A long outage with many logouts must not hold the recovering request for one Redis round
    trip per key: the copies go out together, a bounded number at a time."""
    import asyncio

    from adapters.kv.failover import COPY_BACK_BATCH

    now = [0.0]
    primary = FlakyStore()
    kv = FailoverKeyValueStore(primary, clock=lambda: now[0])
    primary.down = True
    for n in range(200):
        await kv.set(f"revoked-jti:{n}", b"1", 900)
    primary.down = False
    real_set = primary.set
    in_flight, most = [0], [0]

    async def slow_set(key: str, value: bytes, ttl_seconds: int) -> None:
        in_flight[0] += 1
        most[0] = max(most[0], in_flight[0])
        await asyncio.sleep(0)  # a round trip: other copies may start meanwhile
        in_flight[0] -= 1
        await real_set(key, value, ttl_seconds)

    primary.set = slow_set  # type: ignore[method-assign]
    now[0] = 2.0
    await kv.get("anything")  # recovers and copies back
    assert 1 < most[0] <= COPY_BACK_BATCH
    assert all([await primary.get(f"revoked-jti:{n}") == b"1" for n in range(200)])
