from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol


class QueuedJob(NamedTuple):
    kind: str
    payload: dict[str, Any]
    key: str


class JobQueue(Protocol):
    """Hands background work to a worker (SAQ on Redis, or an in-process runner).

    ``key`` makes enqueueing idempotent: the same key is never run twice concurrently.
    """

    async def enqueue(self, kind: str, payload: dict[str, Any], *, key: str) -> None: ...

    async def enqueue_many(self, jobs: Sequence[QueuedJob]) -> None:
        """Hand several jobs over at once (one round trip on Redis). Raises when the batch may not
        have arrived whole; sending it again is safe, the keys see to that."""
        ...

    async def ping(self) -> bool: ...
