"""A key-value store that keeps working while Redis is down: in-process until Redis answers again.

The key-value store holds login-failure counters and revoked access-token ids. Failing every
authenticated request with 503 because Redis is unreachable would turn a cache outage into a full
outage, so while the primary (Redis) fails, reads and writes go to an in-process store, after one
warning; after a backoff (1 s, doubling to 5 s) one call probes Redis again. Values written during
the outage (revocations from logouts) are copied to Redis on recovery with their remaining lifetime,
so other processes learn about them too.

The trade-off, stated: during an outage a process does not see revocations other processes wrote
before it (access tokens live ``ACCESS_TOKEN_TTL_SECONDS``, 15 minutes by default; password resets,
account deletion and refresh-token revocation are checked in the database and are unaffected), and
login-failure counters count per process.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from adapters.circuit import CircuitBreaker, OutageLog
from adapters.kv.memory import MemoryKeyValueStore
from application.ports.kv import KeyValueStore

log = logging.getLogger(__name__)
_OUTAGES = OutageLog(log, "key-value store", "using in-process state")
T = TypeVar("T")
COPY_BACK_BATCH = 32  # keys copied to Redis at once after an outage (each on its own pooled connection)


class FailoverKeyValueStore:
    def __init__(
        self,
        primary: KeyValueStore,
        *,
        fallback: MemoryKeyValueStore | None = None,
        min_backoff: float = 1.0,
        max_backoff: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.primary = primary
        self.fallback = fallback or MemoryKeyValueStore()
        self.breaker = CircuitBreaker(min_backoff=min_backoff, max_backoff=max_backoff, clock=clock, outages=_OUTAGES)
        self._written: set[str] = set()  # keys set in the fallback during the outage

    @property
    def down(self) -> bool:
        return self.breaker.open

    async def get(self, key: str) -> bytes | None:
        return await self._call(lambda s: s.get(key))

    async def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        await self._call(lambda s: s.set(key, value, ttl_seconds), written=key)

    async def delete(self, key: str) -> None:
        await self._call(lambda s: s.delete(key))
        if self.down:
            self._written.discard(key)

    async def incr(self, key: str, ttl_seconds: int) -> int:
        return await self._call(lambda s: s.incr(key, ttl_seconds))

    async def ttl(self, key: str) -> int:
        return await self._call(lambda s: s.ttl(key))

    async def _call(self, operation: Callable[[KeyValueStore], Awaitable[T]], *, written: str | None = None) -> T:
        if self.breaker.allows_call():
            try:
                result = await operation(self.primary)
            except Exception as error:
                self.breaker.failed(error)
            else:
                if self.breaker.succeeded():
                    await self._recovered()
                return result
        if written is not None:
            self._written.add(written)
        return await operation(self.fallback)

    async def _recovered(self) -> None:
        """Copy what the outage wrote to Redis, ``COPY_BACK_BATCH`` keys at a time: a long outage
        with many logouts must not hold the recovering request for one round trip per key."""
        written, self._written = sorted(self._written), set()
        for start in range(0, len(written), COPY_BACK_BATCH):
            await asyncio.gather(*(self._copy_back(key) for key in written[start : start + COPY_BACK_BATCH]))

    async def _copy_back(self, key: str) -> None:
        value = await self.fallback.get(key)
        remaining = await self.fallback.ttl(key)
        if value is None or remaining <= 0:
            return
        try:
            await self.primary.set(key, value, remaining)
        except Exception:
            self._written.add(key)  # tried again after the next recovery
