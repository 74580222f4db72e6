"""Outbox bookkeeping outside a request's unit of work (relay and job side).

Each method is one short transaction of its own, so a job marks its row processed independently
of the work it did, and the relay never holds locks while it talks to the queue.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.sql.database import Database
from adapters.sql.tables import OutboxRow, table_of
from application.ports.outbox import OutboxEntry

O = table_of(OutboxRow)  # noqa: E741


def _entry(row: Any) -> OutboxEntry:
    return OutboxEntry(
        id=row.id,
        kind=row.kind,
        payload=dict(row.payload or {}),
        created_at=row.created_at,
        dispatched_at=row.dispatched_at,
        processed_at=row.processed_at,
        attempts=row.attempts,
    )


class SqlOutboxStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction; on SQLite it takes its turn with the units of work (one writer)."""
        if self.db.is_postgres:
            async with self.db.engine.begin() as conn:
                yield conn
            return
        async with self.db.write_turn(), self.db.engine.begin() as conn:
            yield conn

    async def mark_dispatched(self, ids: Iterable[uuid.UUID]) -> None:
        id_list = list(ids)
        if not id_list:
            return
        now = datetime.now(UTC)
        # No write lock here: a dispatcher may run inside a unit of work's block after its commit.
        async with self.db.engine.begin() as conn:
            await conn.execute(update(O).where(O.c.id.in_(id_list)).values(dispatched_at=now, updated_at=now))

    async def get(self, outbox_id: uuid.UUID) -> OutboxEntry | None:
        async with self.db.engine.connect() as conn:
            row = (await conn.execute(select(O).where(O.c.id == outbox_id))).first()
        return _entry(row) if row else None

    async def mark_processed(self, outbox_id: uuid.UUID, now: datetime, *, payload: dict[str, Any]) -> None:
        async with self._write() as conn:
            await conn.execute(
                update(O)
                .where(O.c.id == outbox_id, O.c.processed_at.is_(None))
                .values(processed_at=now, payload=payload, last_error=None, updated_at=now)
            )

    async def record_failure(self, outbox_id: uuid.UUID, error: str, now: datetime, *, attempts: int = 1) -> None:
        async with self._write() as conn:
            await conn.execute(
                update(O)
                .where(O.c.id == outbox_id)
                .values(attempts=O.c.attempts + attempts, last_error=error[:1024], updated_at=now)
            )

    async def due_for_relay(
        self, *, created_before: datetime, dispatched_before: datetime, max_attempts: int, limit: int
    ) -> list[OutboxEntry]:
        query = (
            select(O)
            .where(
                O.c.processed_at.is_(None),
                O.c.attempts < max_attempts,
                or_(
                    and_(O.c.dispatched_at.is_(None), O.c.created_at < created_before),
                    O.c.dispatched_at < dispatched_before,
                ),
            )
            .order_by(O.c.created_at, O.c.id)
            .limit(limit)
        )
        async with self.db.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_entry(row) for row in rows]

    async def claim(self, ids: Iterable[uuid.UUID], *, dispatched_before: datetime, now: datetime) -> list[uuid.UUID]:
        id_list = list(ids)
        if not id_list:
            return []
        claimed: list[uuid.UUID] = []
        async with self._write() as conn:
            for outbox_id in id_list:
                # Guarded update: of several relays racing for a row, exactly one changes it.
                result = await conn.execute(
                    update(O)
                    .where(
                        O.c.id == outbox_id,
                        O.c.processed_at.is_(None),
                        or_(O.c.dispatched_at.is_(None), O.c.dispatched_at < dispatched_before),
                    )
                    .values(dispatched_at=now, updated_at=now)
                )
                if result.rowcount:
                    claimed.append(outbox_id)
        return claimed

    async def unclaim(self, ids: Iterable[uuid.UUID]) -> None:
        id_list = list(ids)
        if not id_list:
            return
        async with self._write() as conn:
            await conn.execute(update(O).where(O.c.id.in_(id_list)).values(dispatched_at=None))

    async def oldest_pending(self) -> datetime | None:
        """When the oldest unprocessed row was written (None: nothing pending) — for /metrics."""
        query = select(func.min(O.c.created_at)).where(O.c.processed_at.is_(None))  # ix_outbox_pending
        async with self.db.read_engine.connect() as conn:
            oldest: datetime | None = (await conn.execute(query)).scalar_one()
        if oldest is not None and oldest.tzinfo is None:  # SQLite keeps naive UTC
            oldest = oldest.replace(tzinfo=UTC)
        return oldest

    async def outcome_counts(self) -> dict[tuple[str, str], int]:
        """Jobs by (kind, outcome): done, failing (tried and not done yet) or pending — for /metrics."""
        outcome = case(
            (O.c.processed_at.is_not(None), "done"),
            (O.c.attempts > 0, "failing"),
            else_="pending",
        ).label("outcome")
        query = select(O.c.kind, outcome, func.count()).group_by(O.c.kind, outcome)
        async with self.db.read_engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return {(str(kind), str(result)): int(count) for kind, result, count in rows}
