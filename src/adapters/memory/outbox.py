"""The outbox in memory: ``MemoryOutboxRepository`` writes the rows inside a unit of work,
``MemoryOutboxJobStore`` is the job side over the same table."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from adapters.memory.store import MemoryStore
from application.ports.outbox import OutboxEntry
from domain.ids import new_id


def _entry(row: dict[str, Any]) -> OutboxEntry:
    return OutboxEntry(
        id=row["id"],
        kind=row["kind"],
        payload=dict(row["payload"]),
        created_at=row["created_at"],
        dispatched_at=row.get("dispatched_at"),
        processed_at=row.get("processed_at"),
        attempts=row.get("attempts", 0),
    )


class MemoryOutboxRepository:
    def __init__(self, store: MemoryStore) -> None:
        self.rows: dict[uuid.UUID, dict[str, Any]] = store.table("outbox")

    async def add(self, kind: str, payload: dict[str, Any]) -> uuid.UUID:
        [outbox_id] = await self.add_many([(kind, payload)])
        return outbox_id

    async def add_many(self, jobs: Sequence[tuple[str, dict[str, Any]]]) -> list[uuid.UUID]:
        now = datetime.now(UTC)
        ids = []
        for kind, payload in jobs:
            outbox_id = new_id()
            self.rows[outbox_id] = {
                "id": outbox_id,
                "kind": kind,
                "payload": dict(payload),
                "created_at": now,
                "dispatched_at": now,  # claimed by the writer (``OutboxRepository.add_many``)
                "processed_at": None,
            }
            ids.append(outbox_id)
        return ids


class MemoryOutboxJobStore:
    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    def _rows(self) -> dict[uuid.UUID, dict[str, Any]]:
        return self.store.table("outbox")

    async def oldest_pending(self) -> datetime | None:
        pending = [row["created_at"] for row in self._rows().values() if row.get("processed_at") is None]
        return min(pending, default=None)

    async def outcome_counts(self) -> dict[tuple[str, str], int]:
        def outcome(row: dict[str, Any]) -> str:
            if row.get("processed_at") is not None:
                return "done"
            return "failing" if row.get("attempts", 0) > 0 else "pending"

        return dict(Counter((row["kind"], outcome(row)) for row in self._rows().values()))

    async def get(self, outbox_id: uuid.UUID) -> OutboxEntry | None:
        row = self._rows().get(outbox_id)
        return _entry(row) if row else None

    async def mark_processed(self, outbox_id: uuid.UUID, now: datetime, *, payload: dict[str, Any]) -> None:
        row = self._rows().get(outbox_id)
        if row is not None and row.get("processed_at") is None:
            row["processed_at"] = now
            row["payload"] = dict(payload)
            row["last_error"] = None

    async def record_failure(self, outbox_id: uuid.UUID, error: str, now: datetime, *, attempts: int = 1) -> None:
        row = self._rows().get(outbox_id)
        if row is not None:
            row["attempts"] = row.get("attempts", 0) + attempts
            row["last_error"] = error

    async def due_for_relay(
        self, *, created_before: datetime, dispatched_before: datetime, max_attempts: int, limit: int
    ) -> list[OutboxEntry]:
        due = [
            _entry(row)
            for row in self._rows().values()
            if row.get("processed_at") is None
            and row.get("attempts", 0) < max_attempts
            and (
                (row.get("dispatched_at") is None and row["created_at"] < created_before)
                or (row.get("dispatched_at") is not None and row["dispatched_at"] < dispatched_before)
            )
        ]
        return sorted(due, key=lambda e: (e.created_at, e.id))[:limit]

    async def claim(self, ids: Iterable[uuid.UUID], *, dispatched_before: datetime, now: datetime) -> list[uuid.UUID]:
        claimed = []
        for outbox_id in ids:
            row = self._rows().get(outbox_id)
            if row is None or row.get("processed_at") is not None:
                continue
            if row.get("dispatched_at") is None or row["dispatched_at"] < dispatched_before:
                row["dispatched_at"] = now
                claimed.append(outbox_id)
        return claimed

    async def unclaim(self, ids: Iterable[uuid.UUID]) -> None:
        for outbox_id in ids:
            row = self._rows().get(outbox_id)
            if row is not None:
                row["dispatched_at"] = None
