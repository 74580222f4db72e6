"""Checkout, order history, cancellation and the seller's sales."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from application.cached_catalog import CacheInvalidation
from application.identity import Principal
from application.jobs import SEND_ORDER_CONFIRMATION, SEND_SALE_NOTICE, Job, JobDispatcher, feed_update, record
from application.pagination import PAGE_DEFAULT, Page, check_limit, page_of, resume_after
from application.ports.clock import Clock
from application.ports.orders import OrderItemView, OrderView, SaleView
from application.ports.persistence import UnitOfWork, UnitOfWorkFactory
from application.use_cases.base import UnitOfWorkUseCase, UseCase
from application.webhook_events import order_events
from domain.errors import Conflict, NotFound, RuleViolation
from domain.ids import new_id
from domain.orders import Order, OrderLine, OrderStatus, order_total, quantities_by_product, validate_idempotency_key
from domain.webhooks import ORDER_CANCELLED, ORDER_PLACED

LIMIT_DEFAULT = PAGE_DEFAULT
_NO_ORDER = "No such order."


@dataclass(frozen=True, slots=True)
class OrderDeps:
    uow: UnitOfWorkFactory
    clock: Clock
    jobs: JobDispatcher
    # Stock and feeds change with orders: cached product reads and feeds are invalidated.
    invalidation: CacheInvalidation | None = None


def order_view(order: Order) -> OrderView:
    return OrderView(
        id=order.id,
        status=order.status.value,
        items=[
            OrderItemView(
                product_id=line.product_id,
                name=line.name,
                unit_price=line.unit_price,
                quantity=line.quantity,
                line_total=line.line_total,
            )
            for line in order.lines
        ],
        total=order.total,
        created_at=order.created_at,
    )


async def _earlier_order(uow: UnitOfWork, buyer_id: uuid.UUID, key: str | None) -> Order | None:
    """The order a checkout with this key already made (so this one is a retry), if any."""
    return await uow.orders.get_by_idempotency_key(buyer_id, key) if key is not None else None


class Checkout(UseCase[OrderDeps]):
    """Turn the cart into an order in one transaction.

    Prices and names are snapshotted into the order lines; stock for all lines is taken in one
    all-or-nothing call that locks the products in product-id order (a fixed lock order, so
    concurrent checkouts cannot deadlock), and any shortfall rolls everything back with a 409
    naming the product, the cart untouched. With an ``Idempotency-Key`` a retry, even a
    concurrent one, returns the first order instead of making another: the unique (buyer, key)
    constraint decides, so the order is looked up only when the insert finds the key taken (or
    when nothing could be ordered: an emptied cart is what a retry usually finds). Confirmation
    emails go through the outbox, so a queue outage delays them and never loses them or the order;
    so do the webhook events of sellers who subscribed (``application.webhook_events``).
    """

    async def execute(self, principal: Principal, *, idempotency_key: str | None = None) -> OrderView:
        key = validate_idempotency_key(idempotency_key) if idempotency_key is not None else None
        now = self.deps.clock.now()
        async with self.deps.uow() as uow:
            # Takes this buyer's lines out of the cart first (locked, back if this does not commit):
            # a concurrent checkout of the same cart waits here and then finds it empty (and the
            # finished order by its key).
            entries = await uow.cart.take_for_checkout(principal.cart_owner)
            if not entries:
                if (existing := await _earlier_order(uow, principal.id, key)) is not None:
                    return order_view(existing)
                raise RuleViolation("The cart is empty.", field="items")
            order_id = new_id()
            lines = [
                OrderLine(
                    id=new_id(),
                    order_id=order_id,
                    product_id=entry.product.id,
                    seller_id=entry.product.seller.id,
                    name=entry.product.name,
                    unit_price=entry.product.price,
                    quantity=entry.quantity,
                )
                for entry in entries
            ]
            try:
                total = order_total(lines)
            except RuleViolation:  # too big to order; still, a retry gets its first order back
                if (existing := await _earlier_order(uow, principal.id, key)) is not None:
                    return order_view(existing)
                raise
            order = Order(
                id=order_id,
                buyer_id=principal.id,
                status=OrderStatus.PLACED,
                total=total,
                created_at=now,
                updated_at=now,
                lines=lines,
                idempotency_key=key,
            )
            if not await uow.orders.add(order):
                # Only a key can collide: another request with it committed first (or still runs).
                existing = await _earlier_order(uow, principal.id, key)
                if existing is None:
                    raise Conflict("A checkout with this Idempotency-Key is in progress.", field="Idempotency-Key")
                return order_view(existing)
            short = await uow.inventory.take_all(quantities_by_product(lines), now)
            if short is not None:
                name = next(line.name for line in lines if line.product_id == short)
                raise Conflict(
                    f'Not enough stock left for "{name}" (product {short}); nothing was ordered.', field="items"
                )
            payloads: list[Job] = [(SEND_ORDER_CONFIRMATION, {"order_id": str(order.id)})]
            payloads += [
                (SEND_SALE_NOTICE, {"order_id": str(order.id), "seller_id": str(seller_id)})
                for seller_id in sorted({line.seller_id for line in lines if line.seller_id is not None})
            ]
            payloads += await order_events(uow, order, ORDER_PLACED, now)
            payloads.append(feed_update(principal.id, [line.product_id for line in lines]))
            jobs = await record(uow, payloads)
            await uow.commit()
        # After the commit, concurrently (none of these raises): jobs onto the queue, caches told.
        after_commit: list[Coroutine[Any, Any, object]] = [self.deps.jobs.dispatch(jobs)]
        if self.deps.invalidation is not None:
            after_commit.append(
                self.deps.invalidation.products_changed((line.product_id for line in lines), feed_of=principal.id)
            )
        await asyncio.gather(*after_commit)
        return order_view(order)


class ListOrders(UnitOfWorkUseCase):
    """The caller's orders, newest first, keyset-paginated."""

    async def execute(
        self, principal: Principal, *, limit: int = LIMIT_DEFAULT, cursor: str | None = None
    ) -> Page[OrderView]:
        check_limit(limit)
        after = resume_after(cursor, "orders", scope=str(principal.id))
        async with self.uow() as uow:
            orders = await uow.orders.list_for_buyer(principal.id, limit=limit + 1, after=after)
        page = page_of(orders, limit, "orders", lambda order: (order.created_at, order.id), scope=str(principal.id))
        return Page(items=[order_view(order) for order in page.items], next_cursor=page.next_cursor)


class GetOrder(UnitOfWorkUseCase):
    """One of the caller's orders; anyone else's is 404, so ids reveal nothing."""

    async def execute(self, principal: Principal, *, order_id: uuid.UUID) -> OrderView:
        async with self.uow() as uow:
            order = await uow.orders.get(order_id, principal.id)
        if order is None:
            raise NotFound(_NO_ORDER, field="order_id")
        return order_view(order)


class CancelOrder:
    """The buyer cancels a placed order and its stock goes back, in one transaction.

    The status change is a guarded update, so of two racing cancels exactly one succeeds and
    the other gets 409, and stock is returned once.
    """

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        invalidation: CacheInvalidation | None = None,
        jobs: JobDispatcher | None = None,
    ) -> None:
        self.uow = uow
        self.clock = clock
        self.invalidation = invalidation
        self.jobs = jobs

    async def execute(self, principal: Principal, *, order_id: uuid.UUID) -> OrderView:
        now = self.clock.now()
        async with self.uow() as uow:
            order = await uow.orders.get(order_id, principal.id)
            if order is None:
                raise NotFound(_NO_ORDER, field="order_id")
            order.cancel()
            changed = await uow.orders.change_status(
                order.id, expected=OrderStatus.PLACED, new=OrderStatus.CANCELLED, now=now
            )
            if not changed:
                raise Conflict("Only a placed order can be cancelled.", field="status")
            await uow.inventory.put_back_all(quantities_by_product(order.lines), now)
            order.updated_at = now
            jobs = await record(uow, await order_events(uow, order, ORDER_CANCELLED, now))
            await uow.commit()
        if jobs and self.jobs is not None:
            await self.jobs.dispatch(jobs)
        if self.invalidation is not None:
            await self.invalidation.products_changed((line.product_id for line in order.lines), feed_of=principal.id)
        return order_view(order)


class ListSales(UnitOfWorkUseCase):
    """The seller's view: order lines of their products, newest first, with each order's status."""

    async def execute(
        self, principal: Principal, *, limit: int = LIMIT_DEFAULT, cursor: str | None = None
    ) -> Page[SaleView]:
        check_limit(limit)
        after = resume_after(cursor, "sales", scope=str(principal.id))
        async with self.uow() as uow:
            entries = await uow.orders.sales(principal.id, limit=limit + 1, after=after)
        page = page_of(
            entries, limit, "sales", lambda entry: (entry.sale.created_at, entry.line_id), scope=str(principal.id)
        )
        return Page(items=[entry.sale for entry in page.items], next_cursor=page.next_cursor)
