"""In-memory webhooks and deliveries (``store.table("webhooks")``, ``"webhook_deliveries"``)."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime

from adapters.memory.store import MemoryStore, view_of
from application.ports.webhooks import AttemptResult, DeliveryTarget, DeliveryView, NewDelivery, SoldOut
from domain.catalog import Product
from domain.webhooks import DeliveryStatus, Webhook


@dataclass(slots=True)
class DeliveryRecord:
    id: uuid.UUID
    webhook_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    body: str
    created_at: datetime
    updated_at: datetime
    status: DeliveryStatus = DeliveryStatus.PENDING
    status_code: int | None = None
    attempts: int = 0
    next_retry_at: datetime | None = None
    first_attempt_at: datetime | None = None
    delivered_at: datetime | None = None
    last_error: str | None = None


class MemoryWebhookRepository:
    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self.rows: dict[uuid.UUID, Webhook] = store.table("webhooks")

    async def add_within_cap(self, webhook: Webhook, cap: int) -> bool:
        if sum(1 for hook in self.rows.values() if hook.user_id == webhook.user_id) >= cap:
            return False
        self.rows[webhook.id] = copy.copy(webhook)
        return True

    async def get(self, webhook_id: uuid.UUID, user_id: uuid.UUID) -> Webhook | None:
        hook = self.rows.get(webhook_id)
        return copy.copy(hook) if hook is not None and hook.user_id == user_id else None

    async def list_for_user(
        self, user_id: uuid.UUID, *, limit: int, after: tuple[datetime, uuid.UUID] | None
    ) -> list[Webhook]:
        mine = sorted(
            (hook for hook in self.rows.values() if hook.user_id == user_id),
            key=lambda hook: (hook.created_at, hook.id),
            reverse=True,
        )
        if after is not None:
            mine = [hook for hook in mine if (hook.created_at, hook.id) < after]
        return [copy.copy(hook) for hook in mine[:limit]]

    async def delete(self, webhook_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        hook = self.rows.get(webhook_id)
        if hook is None or hook.user_id != user_id:
            return False
        del self.rows[webhook_id]
        deliveries = self.store.table("webhook_deliveries")
        for delivery_id in [d.id for d in deliveries.values() if d.webhook_id == webhook_id]:
            del deliveries[delivery_id]
        return True

    async def delete_for_user(self, user_id: uuid.UUID) -> None:
        for hook in [hook for hook in self.rows.values() if hook.user_id == user_id]:
            await self.delete(hook.id, user_id)

    async def subscriptions(self, user_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, set[str]]:
        wanted = set(user_ids)
        found: dict[uuid.UUID, set[str]] = {}
        for hook in self.rows.values():
            if hook.user_id in wanted:
                found.setdefault(hook.user_id, set()).update(hook.events)
        return found

    async def subscribed(self, user_id: uuid.UUID, event_type: str) -> list[Webhook]:
        return sorted(
            (copy.copy(h) for h in self.rows.values() if h.user_id == user_id and event_type in h.events),
            key=lambda hook: hook.id,
        )

    async def sold_out(self, product_ids: Iterable[uuid.UUID]) -> list[SoldOut]:
        products: dict[uuid.UUID, Product] = self.store.table("products")
        found = [products[i] for i in set(product_ids) if i in products]
        return sorted(
            (
                SoldOut(id=p.id, seller_id=p.seller_id, name=p.name)
                for p in found
                if p.stock == 0 and p.withdrawn_at is None
            ),
            key=lambda p: p.id,
        )


class MemoryDeliveryRepository:
    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self.rows: dict[uuid.UUID, DeliveryRecord] = store.table("webhook_deliveries")

    async def add_missing(self, deliveries: Sequence[NewDelivery]) -> None:
        taken = {(d.webhook_id, d.event_id) for d in self.rows.values()}
        for d in deliveries:
            if (d.webhook_id, d.event_id) in taken or d.webhook_id not in self.store.table("webhooks"):
                continue
            taken.add((d.webhook_id, d.event_id))
            self.rows[d.id] = DeliveryRecord(**asdict(d), updated_at=d.created_at, next_retry_at=d.created_at)

    def _due(self, now: datetime) -> list[DeliveryRecord]:
        return [
            d
            for d in self.rows.values()
            if d.status is DeliveryStatus.PENDING and d.next_retry_at is not None and d.next_retry_at <= now
        ]

    async def due_for_event(self, event_id: uuid.UUID, now: datetime) -> list[tuple[uuid.UUID, datetime]]:
        due = sorted((d for d in self._due(now) if d.event_id == event_id), key=lambda d: d.id)
        return [(d.id, d.next_retry_at) for d in due if d.next_retry_at is not None]

    async def due(self, now: datetime, limit: int) -> list[tuple[uuid.UUID, datetime]]:
        due = sorted(self._due(now), key=lambda d: (d.next_retry_at, d.id))[:limit]
        return [(d.id, d.next_retry_at) for d in due if d.next_retry_at is not None]

    async def claim(self, delivery_id: uuid.UUID, now: datetime, lease_until: datetime) -> DeliveryTarget | None:
        delivery = self.rows.get(delivery_id)
        if delivery is None or delivery not in self._due(now):
            return None
        delivery.next_retry_at = lease_until
        delivery.updated_at = now
        hook: Webhook = self.store.table("webhooks")[delivery.webhook_id]
        return view_of(DeliveryTarget, delivery, url=hook.url, secret=hook.secret)

    async def record(self, delivery_id: uuid.UUID, result: AttemptResult) -> None:
        delivery = self.rows.get(delivery_id)
        if delivery is None or delivery.status is not DeliveryStatus.PENDING:
            return
        self.rows[delivery_id] = replace(delivery, **asdict(result))

    async def recent(self, webhook_id: uuid.UUID, limit: int) -> list[DeliveryView]:
        mine = sorted(
            (d for d in self.rows.values() if d.webhook_id == webhook_id),
            key=lambda d: (d.created_at, d.id),
            reverse=True,
        )[:limit]
        return [view_of(DeliveryView, d, type=d.event_type, status=d.status.value) for d in mine]
