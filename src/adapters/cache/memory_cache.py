"""In-process cache: a bounded LRU with per-entry TTL (the embedded default and unit tests).

Bounded by entry count and by total bytes, so a burst of large pages cannot grow the process.
With several API processes each has its own copy: a ``bump`` reaches only this process, and
other processes serve their entries until the TTL ends (keep TTLs short, or use Redis).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Collection


class MemoryCache:
    def __init__(
        self,
        *,
        max_entries: int = 10_000,
        max_bytes: int = 64 * 1024 * 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._clock = clock
        self._data: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self._versions: dict[str, int] = {}
        self._bytes = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._data)

    async def get(self, key: str) -> bytes | None:
        item = self._data.get(key)
        if item is None:
            self.misses += 1
            return None
        value, expires = item
        if expires <= self._clock():
            self._drop(key)
            self.misses += 1
            return None
        self._data.move_to_end(key)
        self.hits += 1
        return value

    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        if ttl_seconds <= 0 or len(value) > self.max_bytes:
            return
        if key in self._data:
            self._drop(key)
        self._data[key] = (value, self._clock() + ttl_seconds)
        self._bytes += len(value)
        while len(self._data) > self.max_entries or self._bytes > self.max_bytes:
            oldest = next(iter(self._data))
            self._drop(oldest)
            self.evictions += 1

    async def delete(self, key: str) -> None:
        self.discard(key)

    def discard(self, key: str) -> None:
        if key in self._data:
            self._drop(key)

    def clear(self) -> None:
        self._data.clear()
        self._bytes = 0

    async def version(self, namespace: str) -> int:
        return self._versions.get(namespace, 0)

    async def bump(self, namespace: str) -> None:
        self._versions[namespace] = self._versions.get(namespace, 0) + 1

    async def invalidate(self, *, keys: Collection[str] = (), namespaces: Collection[str] = ()) -> None:
        for key in keys:
            self.discard(key)
        for namespace in namespaces:
            await self.bump(namespace)

    def _drop(self, key: str) -> None:
        value, _ = self._data.pop(key)
        self._bytes -= len(value)

    def stats(self) -> dict[str, int]:
        return {
            "hits": self.hits,
            "misses": self.misses,
            "errors": 0,
            "entries": len(self._data),
            "bytes": self._bytes,
            "evictions": self.evictions,
        }
