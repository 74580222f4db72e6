"""The transactional outbox: jobs written with the change that needs them (``OutboxRepository``, on
the unit of work), then handed to the queue, run and accounted for (``OutboxJobStore``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
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


class OutboxRepository(Protocol):
    """Jobs recorded in the same transaction as the change that needs them."""

    async def add(self, kind: str, payload: dict[str, Any]) -> uuid.UUID: ...

    async def add_many(self, jobs: Sequence[tuple[str, dict[str, Any]]]) -> list[uuid.UUID]:
        """Record several jobs (kind, payload) at once (one statement); their ids, in order.

        The rows are born claimed by their writer (``dispatched_at`` is their creation time): the
        writer hands them to the queue right after its commit and writes nothing more when that
        works. The relay takes a row over once that claim is stale (the writer died in between),
        or at once when the writer released it because the queue refused it (``unclaim``)."""
        ...


class OutboxJobStore(Protocol):
    """The job side of the transactional outbox; each call is its own short transaction."""

    async def oldest_pending(self) -> datetime | None:
        """When the oldest unprocessed row was written (None: nothing pending)."""
        ...

    async def outcome_counts(self) -> dict[tuple[str, str], int]:
        """Jobs by (kind, outcome): done, failing (tried, not done yet) or pending."""
        ...

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
        """Clear ``dispatched_at`` after a failed enqueue so the next relay run retries promptly
        (one idempotent statement of its own: the caller may still be inside its unit of work's block)."""
        ...
