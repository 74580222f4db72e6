"""Ports for seller webhooks: subscriptions, their deliveries, and the two network steps.

Deliveries are rows (one per webhook and event, unique), so a replayed fan-out job never makes a
second one; a delivery attempt claims its row with a short lease first, so two workers never
send the same attempt at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from msgspec import Struct

from application.pagination import Keyset
from domain.webhooks import DeliveryStatus, Webhook


class WebhookView(Struct):
    id: uuid.UUID
    url: str
    events: list[str]
    created_at: datetime


class DeliveryView(Struct):
    event_id: uuid.UUID
    type: str
    status: str
    status_code: int | None
    attempts: int
    next_retry_at: datetime | None
    delivered_at: datetime | None
    last_error: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class SoldOut:
    """A product whose stock is 0, with its seller (for ``product.out_of_stock``)."""

    id: uuid.UUID
    seller_id: uuid.UUID
    name: str


@dataclass(frozen=True, slots=True)
class NewDelivery:
    id: uuid.UUID
    webhook_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    body: str  # the exact JSON sent on every attempt (so every attempt signs the same bytes)
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DeliveryTarget:
    """What one attempt needs, read when the attempt claims its delivery."""

    id: uuid.UUID
    event_id: uuid.UUID
    url: str
    secret: str
    body: str
    attempts: int
    first_attempt_at: datetime | None


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """What an attempt changes on its delivery, under the names the delivery stores them by
    (``updated_at``: when the attempt finished)."""

    status: DeliveryStatus
    attempts: int
    status_code: int | None
    last_error: str | None
    first_attempt_at: datetime
    next_retry_at: datetime | None
    delivered_at: datetime | None
    updated_at: datetime


class WebhookRepository(Protocol):
    async def add_within_cap(self, webhook: Webhook, cap: int) -> bool:
        """Add unless the owner already has ``cap`` webhooks (racing adds cannot pass the cap)."""
        ...

    async def get(self, webhook_id: uuid.UUID, user_id: uuid.UUID) -> Webhook | None:
        """The webhook when ``user_id`` owns it (anyone else's is None)."""
        ...

    async def list_for_user(self, user_id: uuid.UUID, *, limit: int, after: Keyset | None) -> list[Webhook]:
        """Newest first, keyset after (created_at, id)."""
        ...

    async def delete(self, webhook_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        """Remove it and its deliveries; False when ``user_id`` has no such webhook."""
        ...

    async def delete_for_user(self, user_id: uuid.UUID) -> None: ...

    async def subscriptions(self, user_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, set[str]]:
        """The event types each of these users has a webhook for (users without one are left out)."""
        ...

    async def subscribed(self, user_id: uuid.UUID, event_type: str) -> list[Webhook]: ...

    async def sold_out(self, product_ids: Iterable[uuid.UUID]) -> list[SoldOut]:
        """Which of these products have no stock left (as this transaction sees them)."""
        ...


class DeliveryRepository(Protocol):
    async def add_missing(self, deliveries: Sequence[NewDelivery]) -> None:
        """Insert, skipping (webhook, event) pairs that already have a delivery."""
        ...

    async def due_for_event(self, event_id: uuid.UUID, now: datetime) -> list[tuple[uuid.UUID, datetime]]:
        """(delivery id, due time) of the event's pending deliveries that are due."""
        ...

    async def due(self, now: datetime, limit: int) -> list[tuple[uuid.UUID, datetime]]:
        """(delivery id, due time) of pending deliveries due by ``now``, longest due first."""
        ...

    async def claim(self, delivery_id: uuid.UUID, now: datetime, lease_until: datetime) -> DeliveryTarget | None:
        """Take a pending, due delivery for one attempt by moving its due time to ``lease_until``
        (a guarded update: of racing claimants one wins); None when it is not pending or not due."""
        ...

    async def record(self, delivery_id: uuid.UUID, result: AttemptResult) -> None:
        """Store an attempt's outcome (still pending, delivered or failed)."""
        ...

    async def recent(self, webhook_id: uuid.UUID, limit: int) -> list[DeliveryView]:
        """The webhook's latest deliveries, newest first."""
        ...


class DeliveryFailed(Exception):
    """The request did not get an HTTP answer (refused, reset, timed out, TLS failed)."""


class ConnectFailed(DeliveryFailed):
    """No connection could be made to this address (refused, unreachable): another may work."""


class AddressResolver(Protocol):
    async def resolve(self, host: str, port: int) -> list[str]:
        """Every address ``host`` resolves to (an IP literal resolves to itself); raises ``LookupError``."""
        ...


class WebhookSender(Protocol):
    async def post(self, url: str, address: str, body: bytes, headers: Mapping[str, str], *, timeout: float) -> int:
        """POST to ``url`` connecting to ``address`` (already vetted), following no redirect.

        Returns the status code; raises ``DeliveryFailed`` when no answer came within ``timeout``.
        """
        ...
