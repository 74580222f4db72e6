"""Webhooks and their deliveries on SQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime

from adapters.sql.executor import SqlAdapter, page_rows
from adapters.sql.mapping import params_of, row_mapper
from adapters.sql.statements import webhooks as sql
from application.ports.webhooks import AttemptResult, DeliveryTarget, DeliveryView, NewDelivery, SoldOut
from domain.webhooks import DeliveryStatus, Webhook

_webhook = row_mapper(Webhook, derived={"events": lambda row: tuple(row["events"])})
_sold_out = row_mapper(SoldOut)
_target = row_mapper(DeliveryTarget)
_delivery_view = row_mapper(DeliveryView)


class SqlWebhookRepository(SqlAdapter):
    async def add_within_cap(self, webhook: Webhook, cap: int) -> bool:
        await self.sql.row(sql.LOCK_USER, user_id=webhook.user_id)
        if await self.sql.value(sql.COUNT_OF_USER, user_id=webhook.user_id) >= cap:
            return False
        await self.sql.run(
            sql.INSERT_WEBHOOK,
            id=webhook.id,
            user_id=webhook.user_id,
            url=webhook.url,
            events=list(webhook.events),
            secret=webhook.secret,
            created_at=webhook.created_at,
            updated_at=webhook.created_at,
        )
        return True

    async def get(self, webhook_id: uuid.UUID, user_id: uuid.UUID) -> Webhook | None:
        row = await self.sql.row(sql.WEBHOOK_OF_USER, webhook_id=webhook_id, user_id=user_id)
        return _webhook(row) if row else None

    async def list_for_user(
        self, user_id: uuid.UUID, *, limit: int, after: tuple[datetime, uuid.UUID] | None
    ) -> list[Webhook]:
        rows = await page_rows(self.sql, sql.WEBHOOKS_OF_USER, after, user_id=user_id, limit=limit)
        return [_webhook(row) for row in rows]

    async def delete(self, webhook_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        await self.sql.run(sql.DELETE_DELIVERIES_OF_WEBHOOK, webhook=webhook_id, owner=user_id)
        return await self.sql.run(sql.DELETE_WEBHOOK, webhook=webhook_id, owner=user_id) > 0

    async def delete_for_user(self, user_id: uuid.UUID) -> None:
        await self.sql.run(sql.DELETE_DELIVERIES_OF_USER, owner=user_id)
        await self.sql.run(sql.DELETE_WEBHOOKS_OF_USER, owner=user_id)

    async def subscriptions(self, user_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, set[str]]:
        ids = list(user_ids)
        if not ids:
            return {}
        found: dict[uuid.UUID, set[str]] = {}
        for row in await self.sql.rows(sql.SUBSCRIPTIONS, user_ids=ids):
            found.setdefault(row["user_id"], set()).update(row["events"])
        return found

    async def subscribed(self, user_id: uuid.UUID, event_type: str) -> list[Webhook]:
        hooks = [_webhook(row) for row in await self.sql.rows(sql.SUBSCRIBED, user_id=user_id)]
        return [hook for hook in hooks if event_type in hook.events]

    async def sold_out(self, product_ids: Iterable[uuid.UUID]) -> list[SoldOut]:
        ids = list(product_ids)
        return [_sold_out(row) for row in await self.sql.rows(sql.SOLD_OUT, product_ids=ids)] if ids else []


class SqlDeliveryRepository(SqlAdapter):
    async def add_missing(self, deliveries: Sequence[NewDelivery]) -> None:
        rows = [
            {
                "id": delivery.id,
                "webhook_id": delivery.webhook_id,
                "event_id": delivery.event_id,
                "event_type": delivery.event_type,
                "body": delivery.body,
                "status": DeliveryStatus.PENDING.value,
                "status_code": None,
                "attempts": 0,
                "next_retry_at": delivery.created_at,
                "first_attempt_at": None,
                "delivered_at": None,
                "last_error": None,
                "created_at": delivery.created_at,
                "updated_at": delivery.created_at,
            }
            for delivery in deliveries
        ]
        await self.sql.run_many(sql.ADD_DELIVERY, rows)

    async def due_for_event(self, event_id: uuid.UUID, now: datetime) -> list[tuple[uuid.UUID, datetime]]:
        rows = await self.sql.rows(sql.DUE_FOR_EVENT, event_id=event_id, now=now)
        return [(row["id"], row["next_retry_at"]) for row in rows]

    async def due(self, now: datetime, limit: int) -> list[tuple[uuid.UUID, datetime]]:
        return [(row["id"], row["next_retry_at"]) for row in await self.sql.rows(sql.DUE, now=now, limit=limit)]

    async def claim(self, delivery_id: uuid.UUID, now: datetime, lease_until: datetime) -> DeliveryTarget | None:
        if not await self.sql.run(sql.LEASE, delivery_id=delivery_id, now=now, lease_until=lease_until):
            return None
        row = await self.sql.row(sql.DELIVERY_TARGET, delivery_id=delivery_id)
        assert row is not None, "a leased delivery exists"
        return _target(row)

    async def record(self, delivery_id: uuid.UUID, result: AttemptResult) -> None:
        await self.sql.run(sql.RECORD_ATTEMPT, **params_of(result, delivery_id=delivery_id))

    async def recent(self, webhook_id: uuid.UUID, limit: int) -> list[DeliveryView]:
        rows = await self.sql.rows(sql.RECENT_DELIVERIES, webhook_id=webhook_id, limit=limit)
        return [_delivery_view(row) for row in rows]
