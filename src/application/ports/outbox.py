from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    id: uuid.UUID
    kind: str
    payload: dict[str, Any]
    created_at: datetime
    dispatched_at: datetime | None
    processed_at: datetime | None
    attempts: int


class OutboxJobStore(Protocol):
    """The job side of the transactional outbox; each call is its own short transaction."""

    async def get(self, outbox_id: uuid.UUID) -> OutboxEntry | None: ...

    async def mark_processed(self, outbox_id: uuid.UUID, now: datetime, *, payload: dict[str, Any]) -> None:
        """Mark the row done and store ``payload`` in place of the original (secrets dropped)."""
        ...

    async def record_failure(self, outbox_id: uuid.UUID, error: str, now: datetime, *, attempts: int = 1) -> None:
        """Count ``attempts`` failed attempts and keep the last one's error for operators."""
        ...

    async def due_for_relay(
        self, *, created_before: datetime, dispatched_before: datetime, max_attempts: int, limit: int
    ) -> list[OutboxEntry]:
        """Unprocessed rows never dispatched (and older than a moment), or dispatched long ago."""
        ...

    async def claim(self, ids: Iterable[uuid.UUID], *, dispatched_before: datetime, now: datetime) -> list[uuid.UUID]:
        """Stamp ``dispatched_at`` on rows nobody re-dispatched since; only the winner enqueues."""
        ...

    async def unclaim(self, ids: Iterable[uuid.UUID]) -> None:
        """Clear ``dispatched_at`` after a failed enqueue so the next relay run retries promptly."""
        ...
