from __future__ import annotations

from collections.abc import Collection
from typing import Protocol


class Cache(Protocol):
    """A best-effort cache of bytes (Redis, or a bounded in-process LRU).

    It never raises: when the backend is slow or down, reads are misses and writes are dropped, so
    callers fall back to the database. ``bump`` makes every key of a namespace stale in O(1): keys
    are built with the namespace's current ``version`` (see ``application.caching``).
    """

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def version(self, namespace: str) -> int:
        """The namespace's current version: an opaque number that changes on every ``bump``."""
        ...

    async def bump(self, namespace: str) -> None:
        """Invalidate everything cached under ``namespace`` by moving to a new version."""
        ...

    async def invalidate(self, *, keys: Collection[str] = (), namespaces: Collection[str] = ()) -> None:
        """``delete`` every key and ``bump`` every namespace at once: one round trip where the
        backend allows (a write tells the cache everything it changed in one call)."""
        ...
