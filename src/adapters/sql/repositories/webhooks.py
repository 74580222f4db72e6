"""Webhooks and their deliveries on SQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.sql.repositories.catalog import _insert, _rowcount
from adapters.sql.repositories.orders import _before
from adapters.sql.tables import ProductRow, UserRow, WebhookDeliveryRow, WebhookRow, table_of
from application.ports.webhooks import AttemptResult, DeliveryTarget, DeliveryView, NewDelivery, SoldOut
from domain.webhooks import DeliveryStatus, Webhook

W = table_of(WebhookRow)
D = table_of(WebhookDeliveryRow)
P = table_of(ProductRow)
U = table_of(UserRow)
_PENDING = DeliveryStatus.PENDING.value


def _webhook(row: Any) -> Webhook:
    return Webhook(
        id=row.id,
        user_id=row.user_id,
        url=row.url,
        events=tuple(row.events),
        secret=row.secret,
        created_at=row.created_at,
    )


class SqlWebhookRepository:
    def __init__(self, session: AsyncSession, dialect: str) -> None:
        self.s = session
        self.dialect = dialect

    async def add_within_cap(self, webhook: Webhook, cap: int) -> bool:
        if self.dialect == "postgresql":
            # Racing adds of one user queue on the user's row, so each counts the others' rows.
            await self.s.execute(select(U.c.id).where(U.c.id == webhook.user_id).with_for_update())
        count = (
            await self.s.execute(select(func.count()).select_from(W).where(W.c.user_id == webhook.user_id))
        ).scalar_one()
        if count >= cap:
            return False
        await self.s.execute(
            insert(W).values(
                id=webhook.id,
                user_id=webhook.user_id,
                url=webhook.url,
                events=list(webhook.events),
                secret=webhook.secret,
                created_at=webhook.created_at,
                updated_at=webhook.created_at,
            )
        )
        return True

    async def get(self, webhook_id: uuid.UUID, user_id: uuid.UUID) -> Webhook | None:
        row = (await self.s.execute(select(W).where(W.c.id == webhook_id, W.c.user_id == user_id))).first()
        return _webhook(row) if row else None

    async def list_for_user(
        self, user_id: uuid.UUID, *, limit: int, after: tuple[datetime, uuid.UUID] | None
    ) -> list[Webhook]:
        stmt = select(W).where(W.c.user_id == user_id)
        if after is not None:
            stmt = stmt.where(_before(W.c.created_at, W.c.id, after))
        stmt = stmt.order_by(W.c.created_at.desc(), W.c.id.desc()).limit(limit)
        return [_webhook(row) for row in (await self.s.execute(stmt)).all()]

    async def delete(self, webhook_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        # Deliveries go with it (ON DELETE CASCADE; SQLite runs with foreign keys on).
        await self.s.execute(
            delete(D).where(D.c.webhook_id.in_(select(W.c.id).where(W.c.id == webhook_id, W.c.user_id == user_id)))
        )
        result = await self.s.execute(delete(W).where(W.c.id == webhook_id, W.c.user_id == user_id))
        return _rowcount(result) > 0

    async def delete_for_user(self, user_id: uuid.UUID) -> None:
        await self.s.execute(delete(D).where(D.c.webhook_id.in_(select(W.c.id).where(W.c.user_id == user_id))))
        await self.s.execute(delete(W).where(W.c.user_id == user_id))

    async def subscriptions(self, user_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, set[str]]:
        ids = list(user_ids)
        if not ids:
            return {}
        rows = (await self.s.execute(select(W.c.user_id, W.c.events).where(W.c.user_id.in_(ids)))).all()
        found: dict[uuid.UUID, set[str]] = {}
        for user_id, events in rows:
            found.setdefault(user_id, set()).update(events)
        return found

    async def subscribed(self, user_id: uuid.UUID, event_type: str) -> list[Webhook]:
        rows = (await self.s.execute(select(W).where(W.c.user_id == user_id).order_by(W.c.id))).all()
        return [hook for hook in map(_webhook, rows) if event_type in hook.events]

    async def sold_out(self, product_ids: Iterable[uuid.UUID]) -> list[SoldOut]:
        ids = list(product_ids)
        if not ids:
            return []
        stmt = (
            select(P.c.id, P.c.seller_id, P.c.name)
            .where(P.c.id.in_(ids), P.c.stock == 0, P.c.withdrawn_at.is_(None))
            .order_by(P.c.id)
        )
        return [
            SoldOut(id=row.id, seller_id=row.seller_id, name=row.name) for row in (await self.s.execute(stmt)).all()
        ]


class SqlDeliveryRepository:
    def __init__(self, session: AsyncSession, dialect: str) -> None:
        self.s = session
        self.dialect = dialect

    async def add_missing(self, deliveries: Sequence[NewDelivery]) -> None:
        if not deliveries:
            return
        rows = [
            {
                "id": d.id,
                "webhook_id": d.webhook_id,
                "event_id": d.event_id,
                "event_type": d.event_type,
                "body": d.body,
                "status": _PENDING,
                "attempts": 0,
                "next_retry_at": d.created_at,
                "created_at": d.created_at,
                "updated_at": d.created_at,
            }
            for d in deliveries
        ]
        stmt = _insert(self.dialect)(D).on_conflict_do_nothing(index_elements=["webhook_id", "event_id"])
        await self.s.execute(stmt, rows)

    async def due_for_event(self, event_id: uuid.UUID, now: datetime) -> list[tuple[uuid.UUID, datetime]]:
        stmt = (
            select(D.c.id, D.c.next_retry_at)
            .where(D.c.event_id == event_id, D.c.status == _PENDING, D.c.next_retry_at <= now)
            .order_by(D.c.id)
        )
        return [(row.id, row.next_retry_at) for row in (await self.s.execute(stmt)).all()]

    async def due(self, now: datetime, limit: int) -> list[tuple[uuid.UUID, datetime]]:
        stmt = (
            select(D.c.id, D.c.next_retry_at)
            .where(D.c.status == _PENDING, D.c.next_retry_at <= now)
            .order_by(D.c.next_retry_at, D.c.id)
            .limit(limit)
        )
        return [(row.id, row.next_retry_at) for row in (await self.s.execute(stmt)).all()]

    async def claim(self, delivery_id: uuid.UUID, now: datetime, lease_until: datetime) -> DeliveryTarget | None:
        result = await self.s.execute(
            update(D)
            .where(D.c.id == delivery_id, D.c.status == _PENDING, D.c.next_retry_at <= now)
            .values(next_retry_at=lease_until, updated_at=now)
        )
        if not _rowcount(result):
            return None
        stmt = (
            select(D.c.id, D.c.event_id, D.c.body, D.c.attempts, D.c.first_attempt_at, W.c.url, W.c.secret)
            .join(W, W.c.id == D.c.webhook_id)
            .where(D.c.id == delivery_id)
        )
        row = (await self.s.execute(stmt)).one()
        return DeliveryTarget(
            id=row.id,
            event_id=row.event_id,
            url=row.url,
            secret=row.secret,
            body=row.body,
            attempts=row.attempts,
            first_attempt_at=row.first_attempt_at,
        )

    async def record(self, delivery_id: uuid.UUID, result: AttemptResult) -> None:
        await self.s.execute(
            update(D)
            .where(D.c.id == delivery_id, D.c.status == _PENDING)
            .values(
                status=result.status.value,
                attempts=result.attempts,
                status_code=result.status_code,
                last_error=result.error,
                first_attempt_at=result.first_attempt_at,
                next_retry_at=result.next_retry_at,
                delivered_at=result.delivered_at,
                updated_at=result.now,
            )
        )

    async def recent(self, webhook_id: uuid.UUID, limit: int) -> list[DeliveryView]:
        stmt = (
            select(
                D.c.event_id,
                D.c.event_type,
                D.c.status,
                D.c.status_code,
                D.c.attempts,
                D.c.next_retry_at,
                D.c.delivered_at,
                D.c.last_error,
                D.c.created_at,
            )
            .where(D.c.webhook_id == webhook_id)
            .order_by(D.c.created_at.desc(), D.c.id.desc())
            .limit(limit)
        )
        return [
            DeliveryView(
                event_id=row.event_id,
                type=row.event_type,
                status=row.status,
                status_code=row.status_code,
                attempts=row.attempts,
                next_retry_at=row.next_retry_at,
                delivered_at=row.delivered_at,
                last_error=row.last_error,
                created_at=row.created_at,
            )
            for row in (await self.s.execute(stmt)).all()
        ]
