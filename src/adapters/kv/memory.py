"""In-process key-value store with expiry (embedded default and unit tests)."""

from __future__ import annotations

import time


class MemoryKeyValueStore:
    def __init__(self) -> None:
        self._data: dict[str, tuple[bytes, float]] = {}

    def _live(self, key: str) -> tuple[bytes, float] | None:
        item = self._data.get(key)
        if item is None:
            return None
        if item[1] <= time.monotonic():
            del self._data[key]
            return None
        return item

    async def get(self, key: str) -> bytes | None:
        item = self._live(key)
        return item[0] if item else None

    async def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        if len(self._data) > 100_000:
            self._evict_expired()
        self._data[key] = (value, time.monotonic() + ttl_seconds)

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)

    async def incr(self, key: str, ttl_seconds: int) -> int:
        item = self._live(key)
        if item is None:
            self._data[key] = (b"1", time.monotonic() + ttl_seconds)
            return 1
        value = int(item[0]) + 1
        self._data[key] = (str(value).encode(), item[1])
        return value

    async def ttl(self, key: str) -> int:
        item = self._live(key)
        return max(0, int(item[1] - time.monotonic())) if item else 0

    def _evict_expired(self) -> None:
        now = time.monotonic()
        for key in [k for k, (_, expiry) in self._data.items() if expiry <= now]:
            del self._data[key]
