from __future__ import annotations

from typing import Any, Protocol


class JobQueue(Protocol):
    """Hands background work to a worker (SAQ on Redis, or an in-process runner).

    ``key`` makes enqueueing idempotent: the same key is never run twice concurrently.
    """

    async def enqueue(self, kind: str, payload: dict[str, Any], *, key: str) -> None: ...

    async def ping(self) -> bool: ...
