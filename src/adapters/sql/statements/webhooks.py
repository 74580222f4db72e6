"""Sellers' webhooks and their deliveries (one per webhook and event)."""

from __future__ import annotations

from sqlalchemy import bindparam, delete, func, insert, select, update

from adapters.sql.statements.common import any_of, bound, columns, keyset_pages, upsert
from adapters.sql.tables import PRODUCTS, USERS, WEBHOOK_DELIVERIES, WEBHOOKS
from domain.webhooks import DeliveryStatus

_PENDING = WEBHOOK_DELIVERIES.c.status == DeliveryStatus.PENDING.value
WEBHOOK_COLUMNS = columns(WEBHOOKS, "id", "user_id", "url", "events", "secret", "created_at")
# Racing adds of one user queue on the user's row (Postgres; SQLite's writers take turns), so each
# counts the others' webhooks.
LOCK_USER = select(USERS.c.id).where(USERS.c.id == bindparam("user_id")).with_for_update()
COUNT_OF_USER = select(func.count()).select_from(WEBHOOKS).where(WEBHOOKS.c.user_id == bindparam("user_id"))
INSERT_WEBHOOK = insert(WEBHOOKS)
WEBHOOK_OF_USER = select(*WEBHOOK_COLUMNS).where(
    WEBHOOKS.c.id == bindparam("webhook_id"), WEBHOOKS.c.user_id == bindparam("user_id")
)
WEBHOOKS_OF_USER = keyset_pages(
    select(*WEBHOOK_COLUMNS).where(WEBHOOKS.c.user_id == bindparam("user_id")), WEBHOOKS.c.created_at, WEBHOOKS.c.id
)
SUBSCRIBED = select(*WEBHOOK_COLUMNS).where(WEBHOOKS.c.user_id == bindparam("user_id")).order_by(WEBHOOKS.c.id)
SUBSCRIPTIONS = select(WEBHOOKS.c.user_id, WEBHOOKS.c.events).where(any_of(WEBHOOKS.c.user_id, "user_ids", by_key=True))
# Deliveries go first (the foreign key cascades too, but SQLite only with foreign keys on).
DELETE_DELIVERIES_OF_WEBHOOK = delete(WEBHOOK_DELIVERIES).where(
    WEBHOOK_DELIVERIES.c.webhook_id.in_(
        select(WEBHOOKS.c.id).where(WEBHOOKS.c.id == bindparam("webhook"), WEBHOOKS.c.user_id == bindparam("owner"))
    )
)
DELETE_WEBHOOK = delete(WEBHOOKS).where(WEBHOOKS.c.id == bindparam("webhook"), WEBHOOKS.c.user_id == bindparam("owner"))
DELETE_DELIVERIES_OF_USER = delete(WEBHOOK_DELIVERIES).where(
    WEBHOOK_DELIVERIES.c.webhook_id.in_(select(WEBHOOKS.c.id).where(WEBHOOKS.c.user_id == bindparam("owner")))
)
DELETE_WEBHOOKS_OF_USER = delete(WEBHOOKS).where(WEBHOOKS.c.user_id == bindparam("owner"))
SOLD_OUT = (
    select(PRODUCTS.c.id, PRODUCTS.c.seller_id, PRODUCTS.c.name)
    .where(any_of(PRODUCTS.c.id, "product_ids", by_key=True), PRODUCTS.c.stock == 0, PRODUCTS.c.withdrawn_at.is_(None))
    .order_by(PRODUCTS.c.id)
)

ADD_DELIVERY = upsert(WEBHOOK_DELIVERIES).on_conflict_do_nothing(
    index_elements=[WEBHOOK_DELIVERIES.c.webhook_id, WEBHOOK_DELIVERIES.c.event_id]
)
DUE_FOR_EVENT = (
    select(WEBHOOK_DELIVERIES.c.id, WEBHOOK_DELIVERIES.c.next_retry_at)
    .where(
        WEBHOOK_DELIVERIES.c.event_id == bindparam("event_id"),
        _PENDING,
        WEBHOOK_DELIVERIES.c.next_retry_at <= bindparam("now"),
    )
    .order_by(WEBHOOK_DELIVERIES.c.id)
)
DUE = (
    select(WEBHOOK_DELIVERIES.c.id, WEBHOOK_DELIVERIES.c.next_retry_at)
    .where(_PENDING, WEBHOOK_DELIVERIES.c.next_retry_at <= bindparam("now"))
    .order_by(WEBHOOK_DELIVERIES.c.next_retry_at, WEBHOOK_DELIVERIES.c.id)
    .limit(bindparam("limit"))
)
# A lease: the one caller whose guarded update wins sends this attempt.
LEASE = (
    update(WEBHOOK_DELIVERIES)
    .where(
        WEBHOOK_DELIVERIES.c.id == bindparam("delivery_id"),
        _PENDING,
        WEBHOOK_DELIVERIES.c.next_retry_at <= bindparam("now"),
    )
    .values(next_retry_at=bindparam("lease_until"), updated_at=bindparam("now"))
)
DELIVERY_TARGET = (
    select(
        WEBHOOK_DELIVERIES.c.id,
        WEBHOOK_DELIVERIES.c.event_id,
        WEBHOOKS.c.url,
        WEBHOOKS.c.secret,
        WEBHOOK_DELIVERIES.c.body,
        WEBHOOK_DELIVERIES.c.attempts,
        WEBHOOK_DELIVERIES.c.first_attempt_at,
    )
    .join(WEBHOOKS, WEBHOOKS.c.id == WEBHOOK_DELIVERIES.c.webhook_id)
    .where(WEBHOOK_DELIVERIES.c.id == bindparam("delivery_id"))
)
RECORD_ATTEMPT = (
    update(WEBHOOK_DELIVERIES)
    .where(WEBHOOK_DELIVERIES.c.id == bindparam("delivery_id"), _PENDING)
    .values(
        bound(
            "status",
            "attempts",
            "status_code",
            "last_error",
            "first_attempt_at",
            "next_retry_at",
            "delivered_at",
            "updated_at",
        )
    )
)
RECENT_DELIVERIES = (
    select(
        WEBHOOK_DELIVERIES.c.event_id,
        WEBHOOK_DELIVERIES.c.event_type.label("type"),
        WEBHOOK_DELIVERIES.c.status,
        WEBHOOK_DELIVERIES.c.status_code,
        WEBHOOK_DELIVERIES.c.attempts,
        WEBHOOK_DELIVERIES.c.next_retry_at,
        WEBHOOK_DELIVERIES.c.delivered_at,
        WEBHOOK_DELIVERIES.c.last_error,
        WEBHOOK_DELIVERIES.c.created_at,
    )
    .where(WEBHOOK_DELIVERIES.c.webhook_id == bindparam("webhook_id"))
    .order_by(WEBHOOK_DELIVERIES.c.created_at.desc(), WEBHOOK_DELIVERIES.c.id.desc())
    .limit(bindparam("limit"))
)
