"""Cart lines, guest carts, orders and stock on SQL (Postgres and SQLite).

Race safety lives in the statements (``statements.carts``, ``statements.orders``): upserts,
the all-or-nothing stock take and guarded updates. Nothing reads a row to decide how to write it.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from adapters.sql.executor import DialectAdapter, Row, SqlAdapter, page_rows
from adapters.sql.mapping import params_of, row_mapper
from adapters.sql.statements import carts as cart_sql
from adapters.sql.statements import orders as order_sql
from application.pagination import Keyset
from application.ports.orders import CartEntry, Purchasable, SaleEntry, SaleView
from domain.orders import CartLine, CartOwner, GuestCart, Order, OrderLine, OrderStatus

cart_entry = row_mapper(CartEntry)
guest_cart = row_mapper(GuestCart)
_purchasable = row_mapper(Purchasable)
_order_line = row_mapper(OrderLine)
_order = row_mapper(Order, derived={"lines": lambda _row: []})
_sale = row_mapper(SaleEntry, derived={"sale": row_mapper(SaleView)})


def owner_key(owner: CartOwner) -> tuple[str, uuid.UUID]:
    """Which variant of a cart statement serves the owner, and the owner's id."""
    if owner.user_id is not None:
        return "user", owner.user_id
    assert owner.guest_cart_id is not None
    return "guest", owner.guest_cart_id


def _line_params(line: CartLine) -> dict[str, Any]:
    params = params_of(line, user_id=line.owner.user_id, guest_cart_id=line.owner.guest_cart_id)
    del params["owner"]
    return params


class SqlCartRepository(DialectAdapter):
    async def add(self, line: CartLine) -> tuple[CartLine, bool] | None:
        owner, _ = owner_key(line.owner)
        row = await self.sql.row(cart_sql.ADD_LINE[owner], **_line_params(line))
        if row is None:
            return None
        stored = CartLine(
            id=row["id"],
            owner=line.owner,
            product_id=line.product_id,
            quantity=row["quantity"],
            price_at_add=row["price_at_add"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )
        return stored, row["id"] == line.id  # our fresh id came back only if the row is new

    async def add_capped(self, lines: Sequence[tuple[CartLine, int]]) -> None:
        batches: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for line, cap in lines:
            batches[owner_key(line.owner)[0]].append({**_line_params(line), "cap": cap})
        for owner, rows in batches.items():  # one batch per owner column; a merge has only one
            await self.sql.run_many(cart_sql.MERGE_LINE[owner], rows)

    async def set_quantity(self, line_id: uuid.UUID, owner: CartOwner, quantity: int, now: datetime) -> bool:
        column, owner_id = owner_key(owner)
        changed = await self.sql.run(
            cart_sql.SET_QUANTITY[column], line_id=line_id, owner_id=owner_id, quantity=quantity, now=now
        )
        return changed > 0

    async def remove(self, line_id: uuid.UUID, owner: CartOwner) -> bool:
        column, owner_id = owner_key(owner)
        return await self.sql.run(cart_sql.REMOVE_LINE[column], line_id=line_id, owner_id=owner_id) > 0

    async def clear(self, owner: CartOwner) -> None:
        column, owner_id = owner_key(owner)
        await self.sql.run(cart_sql.CLEAR[column], owner_id=owner_id)

    async def entries(self, owner: CartOwner, *, line_id: uuid.UUID | None = None) -> list[CartEntry]:
        column, owner_id = owner_key(owner)
        if line_id is not None:
            rows = await self.sql.rows(cart_sql.LINE[column], owner_id=owner_id, line_id=line_id)
        else:
            rows = await self.sql.rows(cart_sql.LINES[column], owner_id=owner_id)
        return [cart_entry(row) for row in rows]

    async def take_for_checkout(self, owner: CartOwner) -> list[CartEntry]:
        column, owner_id = owner_key(owner)
        if self.on_postgres:
            rows = await self.sql.rows(cart_sql.TAKE_FOR_CHECKOUT_POSTGRES[column], owner_id=owner_id)
            return [cart_entry(row) for row in rows]
        entries = await self.entries(owner)
        if entries:
            await self.sql.run(cart_sql.REMOVE_LINES, line_ids=[entry.id for entry in entries])
        return entries


class SqlGuestCartRepository(SqlAdapter):
    async def add(self, cart: GuestCart) -> None:
        await self.sql.run(cart_sql.INSERT_GUEST_CART, **params_of(cart, updated_at=cart.created_at))

    async def get_by_hash(self, token_hash: str) -> GuestCart | None:
        row = await self.sql.row(cart_sql.GUEST_CART_BY_HASH, token_hash=token_hash)
        return guest_cart(row) if row is not None else None

    async def touch(self, cart_id: uuid.UUID, now: datetime) -> None:
        await self.sql.run(cart_sql.TOUCH_GUEST_CART, cart_id=cart_id, now=now)

    async def hold(self, cart_id: uuid.UUID) -> bool:
        return await self.sql.row(cart_sql.HOLD_GUEST_CART, cart_id=cart_id) is not None

    async def spend(self, token_hash: str, *, now: datetime, used_after: datetime) -> uuid.UUID | None:
        row = await self.sql.row(cart_sql.SPEND_GUEST_CART, token=token_hash, now=now, used_after=used_after)
        return row["id"] if row is not None else None

    async def purge(self, *, unused_since: datetime, limit: int) -> int:
        ids = [
            row["id"] for row in await self.sql.rows(cart_sql.STALE_GUEST_CARTS, unused_since=unused_since, limit=limit)
        ]
        if ids:
            await self.sql.run(cart_sql.REMOVE_LINES_OF_GUEST_CARTS, cart_ids=ids)
            await self.sql.run(cart_sql.REMOVE_GUEST_CARTS, cart_ids=ids)
        return len(ids)


class SqlInventoryRepository(DialectAdapter):
    async def purchasable(self, product_id: uuid.UUID) -> Purchasable | None:
        row = await self.sql.row(order_sql.PURCHASABLE, product_id=product_id)
        return _purchasable(row) if row is not None else None

    async def take_all(self, quantities: Mapping[uuid.UUID, int], now: datetime) -> uuid.UUID | None:
        if not quantities:
            return None
        ids = sorted(quantities)
        if self.on_postgres:
            rows = await self.sql.rows(
                order_sql.TAKE_ALL_POSTGRES, ids=ids, quantities=[quantities[i] for i in ids], n=len(ids), now=now
            )
            enough = {row["id"]: row["enough"] for row in rows}
            return next((product_id for product_id in ids if not enough.get(product_id, False)), None)
        # SQLite: units of work run one at a time, so guarded updates in product-id order; the
        # savepoint undoes the ones already made when a later product falls short.
        short: uuid.UUID | None = None
        try:
            async with self.sql.savepoint():
                for product_id in ids:
                    if not await self.sql.run(
                        order_sql.TAKE_ONE, product_id=product_id, quantity=quantities[product_id], now=now
                    ):
                        short = product_id
                        raise _Short
        except _Short:
            return short
        return None

    async def put_back_all(self, quantities: Mapping[uuid.UUID, int], now: datetime) -> None:
        batch = [{"product_id": p, "quantity": quantities[p], "now": now} for p in sorted(quantities)]
        if batch:
            await self.sql.run_many(order_sql.PUT_BACK, batch)  # one round trip, whatever the order's size


class _Short(Exception):
    """A product fell short: leave the savepoint (rolling it back)."""


class SqlOrderRepository(DialectAdapter):
    async def add(self, order: Order) -> bool:
        params = params_of(order)
        del params["lines"]
        if self.on_postgres:  # the order and its lines in one statement
            each = {f"each_{name}": [getattr(line, name) for line in order.lines] for name in order_sql.LINE_FIELDS}
            return bool(await self.sql.value(order_sql.PLACE_ORDER_POSTGRES, **params, **each))
        if await self.sql.row(order_sql.INSERT_ORDER, **params) is None:
            return False
        # The columns the Postgres statement takes from the order itself (``new_order``).
        of_order = {"order_id": order.id, "buyer_id": order.buyer_id, "created_at": order.created_at}
        lines = [
            {
                **{name: getattr(line, name) for name in order_sql.LINE_FIELDS},
                **of_order,
                "updated_at": order.created_at,
            }
            for line in order.lines
        ]
        await self.sql.run_many(order_sql.INSERT_ORDER_LINE, lines)  # one batch
        return True

    async def _with_lines(self, rows: Sequence[Row]) -> list[Order]:
        """Attach lines to a page of orders with one more statement (never one per order)."""
        if not rows:
            return []
        orders = [_order(row) for row in rows]
        by_id = {order.id: order for order in orders}
        for line in await self.sql.rows(order_sql.LINES_OF_ORDERS, order_ids=list(by_id)):
            by_id[line["order_id"]].lines.append(_order_line(line))
        return orders

    async def get(self, order_id: uuid.UUID, buyer_id: uuid.UUID) -> Order | None:
        rows = await self.sql.rows(order_sql.ORDER_OF_BUYER, order_id=order_id, buyer_id=buyer_id)
        orders = await self._with_lines(rows)
        return orders[0] if orders else None

    async def get_by_idempotency_key(self, buyer_id: uuid.UUID, key: str) -> Order | None:
        rows = await self.sql.rows(order_sql.ORDER_BY_IDEMPOTENCY_KEY, buyer_id=buyer_id, idempotency_key=key)
        orders = await self._with_lines(rows)
        return orders[0] if orders else None

    async def list_for_buyer(self, buyer_id: uuid.UUID, *, limit: int, after: Keyset | None) -> list[Order]:
        rows = await page_rows(self.sql, order_sql.ORDERS_OF_BUYER, after, buyer_id=buyer_id, limit=limit)
        return await self._with_lines(rows)

    async def change_status(
        self, order_id: uuid.UUID, *, expected: OrderStatus, new: OrderStatus, now: datetime
    ) -> bool:
        changed = await self.sql.run(
            order_sql.CHANGE_STATUS, order_id=order_id, expected=expected.value, status=new.value, now=now
        )
        return changed == 1

    async def sales(self, seller_id: uuid.UUID, *, limit: int, after: Keyset | None) -> list[SaleEntry]:
        rows = await page_rows(self.sql, order_sql.SALES, after, seller_id=seller_id, limit=limit)
        return [_sale(row) for row in rows]
