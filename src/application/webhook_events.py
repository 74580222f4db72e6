"""Webhook events as outbox jobs, written in the transaction of the change they report.

Each event goes to one seller and carries only that seller's data (their lines of an order).
An event is recorded only for sellers with a webhook for its type, so orders of sellers without
webhooks cost one indexed lookup and nothing else. The ``webhook_event`` job then fans it out
to the seller's webhooks (``use_cases.webhooks.FanOutWebhookEvent``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from application.jobs import WEBHOOK_EVENT, Job
from application.ports.persistence import UnitOfWork
from domain.catalog import Review
from domain.ids import new_id
from domain.orders import Order, OrderLine
from domain.webhooks import ORDER_PLACED, PRODUCT_OUT_OF_STOCK, REVIEW_CREATED


def _money(value: Decimal) -> str:
    return f"{value:.2f}"


def timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, as the API writes timestamps."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def event_job(event_type: str, user_id: uuid.UUID, data: dict[str, Any], now: datetime) -> Job:
    """The outbox job for one event to one seller; the event id is made here, once."""
    payload = {
        "event_id": str(new_id()),
        "type": event_type,
        "user_id": str(user_id),
        "created_at": timestamp(now),
        "data": data,
    }
    return WEBHOOK_EVENT, payload


def order_data(order: Order, lines: Sequence[OrderLine]) -> dict[str, Any]:
    """An order as one seller sees it: only their lines, and the total of those lines."""
    return {
        "order_id": str(order.id),
        "status": order.status.value,
        "created_at": timestamp(order.created_at),
        "items": [
            {
                "product_id": str(line.product_id),
                "name": line.name,
                "unit_price": _money(line.unit_price),
                "quantity": line.quantity,
                "line_total": _money(line.line_total),
            }
            for line in lines
        ],
        "total": _money(sum((line.line_total for line in lines), Decimal(0))),
    }


async def order_events(uow: UnitOfWork, order: Order, event_type: str, now: datetime) -> list[Job]:
    """``event_type`` (order.placed / order.cancelled) for each subscribed seller with lines in it,
    and, for a placed order, ``product.out_of_stock`` for its products the order sold out."""
    by_seller: dict[uuid.UUID, list[OrderLine]] = {}
    for line in order.lines:
        if line.seller_id is not None:
            by_seller.setdefault(line.seller_id, []).append(line)
    subscriptions = await uow.webhooks.subscriptions(by_seller) if by_seller else {}
    jobs = [
        event_job(event_type, seller_id, order_data(order, lines), now)
        for seller_id, lines in sorted(by_seller.items())
        if event_type in subscriptions.get(seller_id, ())
    ]
    if event_type == ORDER_PLACED:
        watched = [
            line.product_id
            for seller_id, lines in by_seller.items()
            if PRODUCT_OUT_OF_STOCK in subscriptions.get(seller_id, ())
            for line in lines
        ]
        jobs += await out_of_stock_events(uow, watched, now, subscribed=True)
    return jobs


async def out_of_stock_events(
    uow: UnitOfWork, product_ids: Iterable[uuid.UUID], now: datetime, *, subscribed: bool = False
) -> list[Job]:
    """``product.out_of_stock`` for those of ``product_ids`` whose stock is now 0.

    ``subscribed`` says the caller already knows the sellers listen for it.
    """
    ids = sorted(set(product_ids))
    if not ids:
        return []
    sold_out = await uow.webhooks.sold_out(ids)
    if not sold_out:
        return []
    if not subscribed:
        subscriptions = await uow.webhooks.subscriptions({p.seller_id for p in sold_out})
        sold_out = [p for p in sold_out if PRODUCT_OUT_OF_STOCK in subscriptions.get(p.seller_id, ())]
    return [
        event_job(PRODUCT_OUT_OF_STOCK, p.seller_id, {"product_id": str(p.id), "name": p.name, "stock": 0}, now)
        for p in sold_out
    ]


async def review_events(uow: UnitOfWork, review: Review, seller_id: uuid.UUID) -> list[Job]:
    subscriptions = await uow.webhooks.subscriptions([seller_id])
    if REVIEW_CREATED not in subscriptions.get(seller_id, ()):
        return []
    data = {
        "review_id": str(review.id),
        "product_id": str(review.product_id),
        "rating": review.rating,
        "comment": review.comment,
        "verified_purchase": review.verified_purchase,
        "created_at": timestamp(review.created_at),
    }
    return [event_job(REVIEW_CREATED, seller_id, data, review.created_at)]
