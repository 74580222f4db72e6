"""Cache on Redis (redis.asyncio) that degrades to "always miss" instead of failing requests.

Every call has a hard deadline (50 ms by default): a late answer is a miss for the caller. An
error (refused connection, protocol error), or three late answers in a row, log one warning and
mark the cache down for a backoff (1 s, doubling to 5 s); a single late answer under load does
not, and its call is left to finish so its pooled connection is not torn down and reopened.
While down, calls return a miss at once without touching Redis, so reads go to the database at
full speed. After the backoff, one call probes Redis; success logs one "recovered" line and the
cache is back. Namespace bumps that failed during an outage are replayed on recovery, so no
invalidation is silently lost in this process (entries written before the outage still expire by their TTL regardless).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Any, TypeVar

from redis.asyncio import Redis

from adapters.circuit import CircuitBreaker, OutageLog

log = logging.getLogger(__name__)
_OUTAGES = OutageLog(log, "cache", "reads go to the database")
T = TypeVar("T")
_FAILED: Any = object()


class RedisCache:
    def __init__(
        self,
        client: Redis,
        *,
        prefix: str = "mkt:cache:",
        timeout: float = 0.05,
        min_backoff: float = 1.0,
        max_backoff: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.timeout = timeout
        self.breaker = CircuitBreaker(min_backoff=min_backoff, max_backoff=max_backoff, clock=clock, outages=_OUTAGES)
        self._probing = False
        self._lost_bumps: set[str] = set()
        self._abandoned: set[asyncio.Task[Any]] = set()
        self._late_in_a_row = 0
        self.late_limit = 3
        self.hits = 0
        self.misses = 0
        self.errors = 0
        self.outages = 0

    @property
    def down(self) -> bool:
        return self.breaker.open

    async def get(self, key: str) -> bytes | None:
        value: Any = await self._call(lambda: self.client.get(self.prefix + key), None)
        if value is None:
            self.misses += 1
            return None
        self.hits += 1
        return bytes(value)

    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        milliseconds = max(1, int(ttl_seconds * 1000))
        await self._call(lambda: self.client.set(self.prefix + key, value, px=milliseconds), None)

    async def delete(self, key: str) -> None:
        await self._call(lambda: self.client.delete(self.prefix + key), None)

    async def version(self, namespace: str) -> int:
        """A random number per namespace, created on first use.

        Random rather than a counter: if Redis evicts or loses the version key (an allkeys-*
        eviction policy, a restart), the next version is new, never an old one whose entries may
        still be cached.
        """
        key = self._ns(namespace)
        value: Any = await self._call(lambda: self.client.get(key), _FAILED)
        if value is None:
            candidate = secrets.randbits(62)
            created: Any = await self._call(lambda: self.client.set(key, candidate, nx=True), _FAILED)
            if created is True:
                return candidate
            value = await self._call(lambda: self.client.get(key), _FAILED)
        if value is _FAILED or value is None:
            return 0  # Redis is failing, so the cache is marked down and every read misses anyway
        return int(value)

    async def bump(self, namespace: str) -> None:
        new = secrets.randbits(62)
        if await self._call(lambda: self.client.set(self._ns(namespace), new), _FAILED) is _FAILED:
            self._lost_bumps.add(namespace)

    async def invalidate(
        self,
        *,
        keys: Collection[str] = (),
        namespaces: Collection[str] = (),
        announce: tuple[str, str] | None = None,
    ) -> None:
        """Delete the keys and bump the namespaces in one pipeline (one round trip); ``announce``
        (channel, message) is published in the same round trip (the tiered cache's pub/sub)."""
        if not keys and not namespaces:
            return

        async def run() -> Any:
            pipe = self.client.pipeline(transaction=False)
            if keys:
                pipe.delete(*(self.prefix + key for key in keys))
            for namespace in namespaces:
                pipe.set(self._ns(namespace), secrets.randbits(62))
            if announce is not None:
                pipe.publish(*announce)
            return await pipe.execute()

        if await self._call(run, _FAILED) is _FAILED:
            self._lost_bumps.update(namespaces)

    def _ns(self, namespace: str) -> str:
        return f"{self.prefix}ns:{namespace}"

    async def _call(self, operation: Callable[[], Awaitable[T]], fallback: T) -> T:
        probe = False
        if self.breaker.open:
            if self._probing or not self.breaker.allows_call():
                return fallback
            probe = self._probing = True  # one caller probes; the others keep missing meanwhile
        # The call runs as its own task so the deadline is exact: on timeout the caller leaves at
        # once and the cancelled call cleans up (closes its connection) in the background.
        task: asyncio.Task[T] = asyncio.ensure_future(operation())
        try:
            done, _ = await asyncio.wait({task}, timeout=self.timeout)
        except asyncio.CancelledError:
            self._abandon(task)
            raise
        finally:
            if probe:
                self._probing = False
        if not done:
            self._late_in_a_row += 1
            if self._late_in_a_row >= self.late_limit or probe or len(self._abandoned) > 256:
                self._abandon(task)
                self._failed(TimeoutError(f"no answer within {self.timeout * 1000:.0f} ms"))
            else:
                self._leave_running(task)
            return fallback
        self._late_in_a_row = 0
        error = task.exception()
        if error is not None:  # refused connections, protocol errors: all a miss
            self._failed(error)
            return fallback
        if self.breaker.succeeded():
            await self._recovered()
        return task.result()

    def _leave_running(self, task: asyncio.Task[Any]) -> None:
        """Let a late call finish in the background: cancelling it would close its connection."""
        self._abandoned.add(task)
        task.add_done_callback(self._forget)

    def _abandon(self, task: asyncio.Task[Any]) -> None:
        task.cancel()
        self._abandoned.add(task)
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[Any]) -> None:
        self._abandoned.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved, so asyncio logs nothing about it

    def _failed(self, error: BaseException) -> None:
        self.errors += 1
        if self.breaker.failed(error):
            self.outages += 1

    async def _recovered(self) -> None:
        """Replay the namespace bumps an outage lost, in one round trip: they grow with the traffic
        (each checkout loses its buyer's feed bump), and one call each held a request for seconds."""
        lost, self._lost_bumps = self._lost_bumps, set()
        if lost:
            await self.invalidate(namespaces=lost)  # lost again if this fails: kept for next time

    def stats(self) -> dict[str, int]:
        return {"hits": self.hits, "misses": self.misses, "errors": self.errors, "outages": self.outages}
