"""The outbox on SQL: jobs recorded in a unit of work, and the job side's bookkeeping.

``SqlOutboxRepository`` writes jobs inside the unit of work of the change that needs them.
``SqlOutboxJobStore`` is the relay's and the jobs' side: each method is one short transaction of
its own, so a job marks its row processed independently of the work it did, and the relay never
holds locks while it talks to the queue.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from adapters.sql.database import Database
from adapters.sql.executor import SqlAdapter
from adapters.sql.mapping import row_mapper
from adapters.sql.statements import outbox as sql
from application.ports.outbox import OutboxEntry
from domain.ids import new_id

_entry = row_mapper(OutboxEntry, derived={"payload": lambda row: dict(row["payload"] or {})})


class SqlOutboxRepository(SqlAdapter):
    async def add(self, kind: str, payload: dict[str, Any]) -> uuid.UUID:
        [outbox_id] = await self.add_many([(kind, payload)])
        return outbox_id

    async def add_many(self, jobs: Sequence[tuple[str, dict[str, Any]]]) -> list[uuid.UUID]:
        now = datetime.now(UTC)
        ids = [new_id() for _ in jobs]
        rows = [
            {
                "id": outbox_id,
                "kind": kind,
                "payload": payload,
                "dispatched_at": now,  # claimed by the writer, which enqueues them after its commit
                "processed_at": None,
                "attempts": 0,
                "last_error": None,
                "created_at": now,
                "updated_at": now,
            }
            for outbox_id, (kind, payload) in zip(ids, jobs, strict=True)
        ]
        await self.sql.run_many(sql.INSERT_JOB, rows)
        return ids


class SqlOutboxJobStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, outbox_id: uuid.UUID) -> OutboxEntry | None:
        row = await self.db.reads.row(sql.JOB_BY_ID, outbox_id=outbox_id)
        return _entry(row) if row else None

    async def mark_processed(self, outbox_id: uuid.UUID, now: datetime, *, payload: dict[str, Any]) -> None:
        async with self.db.write() as executor:
            await executor.run(sql.MARK_PROCESSED, outbox_id=outbox_id, now=now, payload=payload)

    async def record_failure(self, outbox_id: uuid.UUID, error: str, now: datetime, *, attempts: int = 1) -> None:
        async with self.db.write() as executor:
            await executor.run(sql.RECORD_FAILURE, outbox_id=outbox_id, error=error[:1024], now=now, failures=attempts)

    async def due_for_relay(
        self, *, created_before: datetime, dispatched_before: datetime, max_attempts: int, limit: int
    ) -> list[OutboxEntry]:
        rows = await self.db.reads.rows(
            sql.DUE_FOR_RELAY,
            created_before=created_before,
            dispatched_before=dispatched_before,
            max_attempts=max_attempts,
            limit=limit,
        )
        return [_entry(row) for row in rows]

    async def claim(self, ids: Iterable[uuid.UUID], *, dispatched_before: datetime, now: datetime) -> list[uuid.UUID]:
        id_list = list(ids)
        if not id_list:
            return []
        async with self.db.write() as executor:
            rows = await executor.rows(sql.CLAIM, ids=id_list, dispatched_before=dispatched_before, now=now)
        claimed = {row["id"] for row in rows}
        return [outbox_id for outbox_id in id_list if outbox_id in claimed]

    async def unclaim(self, ids: Iterable[uuid.UUID]) -> None:
        id_list = list(ids)
        if id_list:
            # Without the writers' turn on SQLite: a dispatcher may run inside a unit of work's block.
            await self.db.write_once(sql.UNCLAIM, ids=id_list)

    async def oldest_pending(self) -> datetime | None:
        """When the oldest unprocessed row was written (None: nothing pending) — for /metrics."""
        oldest: datetime | None = await self.db.reads.value(sql.OLDEST_PENDING)
        if oldest is not None and oldest.tzinfo is None:  # SQLite keeps naive UTC
            oldest = oldest.replace(tzinfo=UTC)
        return oldest

    async def outcome_counts(self) -> dict[tuple[str, str], int]:
        """Jobs by (kind, outcome): done, failing (tried and not done yet) or pending — for /metrics."""
        rows = await self.db.reads.rows(sql.OUTCOME_COUNTS)
        return {(str(row["kind"]), str(row["outcome"])): int(row["jobs"]) for row in rows}
