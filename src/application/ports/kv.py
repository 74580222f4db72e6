from __future__ import annotations

from typing import Protocol


class KeyValueStore(Protocol):
    """Small shared state with expiry: throttles and revoked token ids (Redis or in-process)."""

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl_seconds: int) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def incr(self, key: str, ttl_seconds: int) -> int:
        """Increment a counter; the first increment starts its ``ttl_seconds`` window."""
        ...

    async def ttl(self, key: str) -> int:
        """Seconds until ``key`` expires; 0 when absent."""
        ...
