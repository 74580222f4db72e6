"""Outbox bookkeeping outside a request's unit of work (relay and job side)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import update

from adapters.sql.database import Database
from adapters.sql.tables import OutboxRow, table_of

O = table_of(OutboxRow)  # noqa: E741


class SqlOutboxStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def mark_dispatched(self, ids: Iterable[uuid.UUID]) -> None:
        id_list = list(ids)
        if not id_list:
            return
        now = datetime.now(UTC)
        async with self.db.engine.begin() as conn:
            await conn.execute(update(O).where(O.c.id.in_(id_list)).values(dispatched_at=now, updated_at=now))
