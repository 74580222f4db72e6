"""A first-level cache in this process in front of the shared Redis cache, coherent across processes.

Hot reads (a popular product, the first page of a category, namespace versions) are answered
from memory without a Redis round trip. Every ``delete`` and ``bump`` also publishes the key or
namespace on a Redis pub/sub channel, and every process drops its local copy when the message
arrives, so a write in one API process reaches the first-level caches of all others within
the pub/sub delivery time (well under a millisecond on one host).

Two rules keep it correct:
- The local tier is used only while this process is subscribed. While the subscription is
  down (Redis restarting, a network cut) every read goes to Redis as if there were no local
  tier, and the local tier is emptied, because invalidations may have been missed meanwhile.
- A value read from Redis or loaded from the database is kept locally only if no invalidation
  arrived since its read began (a generation counter), so a load that raced a write cannot park
  the old value here after the write's message went by.
Local entries also live at most ``local_ttl`` seconds, which bounds the damage of a lost message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection
from typing import Any

from adapters.cache.memory_cache import MemoryCache
from adapters.cache.redis_cache import RedisCache
from adapters.tasks import cancel_and_wait

log = logging.getLogger(__name__)
_KEY, _NAMESPACE = "k:", "n:"
_SEPARATOR = "\n"  # never in a key: keys are ids and names the code builds
_MAX_PENDING = 10_000
# Namespace versions kept in memory: a few global ones and one per user with a feed, so bounded.
MAX_VERSIONS = 100_000


class TieredCache:
    def __init__(
        self,
        local: MemoryCache,
        shared: RedisCache,
        *,
        channel: str,
        local_ttl: float = 10.0,
        retry_seconds: float = 1.0,
        max_versions: int = MAX_VERSIONS,
    ) -> None:
        self.local = local
        self.shared = shared
        self.channel = channel
        self.local_ttl = local_ttl
        self.retry_seconds = retry_seconds
        self.max_versions = max_versions
        self.subscribed = False
        self._generation = 0
        self._pending: dict[str, int] = {}  # key → generation when its read from Redis began
        self._versions: dict[str, int] = {}  # namespace versions, valid while subscribed
        self._listener: asyncio.Task[None] | None = None
        self.local_only_misses = 0  # misses of the process-local view (they never reach Redis)

    # --- the Cache port -------------------------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        self._listen_in_background()
        if self.subscribed:
            value = await self.local.get(key)
            if value is not None:
                return value
        started = self._generation
        value = await self.shared.get(key)
        if value is None:
            self._remember_miss(key, started)
        elif self.subscribed and self._generation == started:
            await self.local.set(key, value, self.local_ttl)
        return value

    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        await self._keep_locally(key, value, ttl_seconds)
        await self.shared.set(key, value, ttl_seconds)

    def _remember_miss(self, key: str, generation: int) -> None:
        """Note when the read of ``key`` began, for ``_keep_locally`` (bounded: misses never set)."""
        if len(self._pending) >= _MAX_PENDING:
            self._pending.clear()
        self._pending[key] = generation

    async def _keep_locally(self, key: str, value: bytes, ttl_seconds: float) -> None:
        """Keep a loaded value in memory only if no invalidation arrived since its read began."""
        started = self._pending.pop(key, None)
        if self.subscribed and started == self._generation:
            await self.local.set(key, value, min(ttl_seconds, self.local_ttl))

    async def delete(self, key: str) -> None:
        await self.local.delete(key)
        # In this order: a process told by the message must not find the old value in Redis.
        await self.shared.delete(key)
        await self._publish(_KEY + key)

    async def version(self, namespace: str) -> int:
        self._listen_in_background()
        if self.subscribed and namespace in self._versions:
            return self._versions[namespace]
        started = self._generation
        value = await self.shared.version(namespace)
        if self.subscribed and self._generation == started:
            if len(self._versions) >= self.max_versions:
                self._versions.clear()  # read again from Redis when next needed
            self._versions[namespace] = value
        return value

    async def bump(self, namespace: str) -> None:
        self._versions.pop(namespace, None)
        await self.shared.bump(namespace)
        await self._publish(_NAMESPACE + namespace)

    async def invalidate(self, *, keys: Collection[str] = (), namespaces: Collection[str] = ()) -> None:
        """Both tiers, and every other process through one published message: one round trip."""
        for key in keys:
            self.local.discard(key)
        for namespace in namespaces:
            self._versions.pop(namespace, None)
        message = _SEPARATOR.join([*(_KEY + key for key in keys), *(_NAMESPACE + ns for ns in namespaces)])
        await self.shared.invalidate(keys=keys, namespaces=namespaces, announce=(self.channel, message))

    def process_local(self) -> ProcessLocalCache:
        """A view that caches in this process only, under the same invalidations (see below)."""
        return ProcessLocalCache(self)

    def stats(self) -> dict[str, int]:
        local = self.local.stats()
        shared = self.shared.stats()
        return {
            "hits": local["hits"] + shared["hits"],
            "misses": shared["misses"] + self.local_only_misses,
            "errors": shared["errors"],
            "local_hits": local["hits"],
            "local_entries": local["entries"],
        }

    # --- invalidation messages ------------------------------------------------------------

    def _invalidated(self, message: str) -> None:
        self._generation += 1
        for item in message.split(_SEPARATOR):  # one entry, or all of an ``invalidate``
            if item.startswith(_KEY):
                self.local.discard(item[len(_KEY) :])
            elif item.startswith(_NAMESPACE):
                self._versions.pop(item[len(_NAMESPACE) :], None)

    def _forget_everything(self) -> None:
        self._generation += 1
        self.subscribed = False
        self.local.clear()
        self._versions.clear()
        self._pending.clear()

    async def _publish(self, message: str) -> None:
        try:
            await self.shared.client.publish(self.channel, message)
        except Exception:  # Redis is failing: our own subscription breaks too, and that resets every process
            log.debug("could not publish a cache invalidation", exc_info=True)

    def _listen_in_background(self) -> None:
        if self._listener is None:
            self._listener = asyncio.ensure_future(self._listen())

    async def _listen(self) -> None:
        while True:
            pubsub: Any = self.shared.client.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    if message["type"] == "subscribe":
                        self._forget_everything()  # anything cached before this moment may be stale
                        self.subscribed = True
                    elif message["type"] == "message":
                        data = message["data"]
                        self._invalidated(data.decode() if isinstance(data, bytes) else str(data))
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if self.subscribed:
                    log.warning("cache invalidation channel lost (%s); local cache off until it is back", error)
                self._forget_everything()
            finally:
                self.subscribed = False
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(self.retry_seconds)

    async def close(self) -> None:
        listener, self._listener = self._listener, None
        await cancel_and_wait(listener)
        self._forget_everything()


class ProcessLocalCache:
    """The first-level tier alone, for reads cheaper to repeat than a Redis round trip.

    A product detail is one primary-key lookup: going to Redis on every miss (a GET, then a SET)
    costs about what it saves, so hot details live in each process's memory only. Invalidation is
    the tiered cache's (``delete`` and ``bump`` publish to every process), and nothing is kept
    while the invalidation channel is down.
    """

    def __init__(self, tiered: TieredCache) -> None:
        self.tiered = tiered

    async def get(self, key: str) -> bytes | None:
        tiered = self.tiered
        tiered._listen_in_background()
        if not tiered.subscribed:
            tiered.local_only_misses += 1
            return None
        value = await tiered.local.get(key)
        if value is None:
            tiered.local_only_misses += 1
            tiered._remember_miss(key, tiered._generation)
        return value

    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        await self.tiered._keep_locally(key, value, ttl_seconds)

    async def delete(self, key: str) -> None:
        await self.tiered.delete(key)

    async def version(self, namespace: str) -> int:
        return await self.tiered.version(namespace)

    async def bump(self, namespace: str) -> None:
        await self.tiered.bump(namespace)

    async def invalidate(self, *, keys: Collection[str] = (), namespaces: Collection[str] = ()) -> None:
        await self.tiered.invalidate(keys=keys, namespaces=namespaces)
