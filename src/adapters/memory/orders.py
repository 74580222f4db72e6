"""In-memory cart lines, orders and stock: the twins of ``adapters.sql.repositories.orders``.

The memory unit of work runs one at a time, so these can read and then write; they keep the
SQL versions' contracts (upsert semantics, guarded updates, idempotency keys).
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime

from adapters.memory.store import MemoryStore, view_of
from application.pagination import Keyset
from application.ports.orders import (
    CartEntry,
    CartProductView,
    CartSellerView,
    Purchasable,
    SaleEntry,
    SaleView,
)
from domain.catalog import Product
from domain.errors import Conflict
from domain.orders import QUANTITY_MAX, CartLine, CartOwner, GuestCart, Order, OrderStatus, merged_quantity
from domain.users import User


def _live(products: dict[uuid.UUID, Product], product_id: uuid.UUID) -> Product | None:
    product = products.get(product_id)
    return product if product is not None and product.withdrawn_at is None else None


class MemoryCartRepository:
    def __init__(self, store: MemoryStore) -> None:
        self.rows: dict[uuid.UUID, CartLine] = store.table("cart_items")
        self.products: dict[uuid.UUID, Product] = store.table("products")
        self.users: dict[uuid.UUID, User] = store.table("users")

    def _find(self, owner: CartOwner, product_id: uuid.UUID) -> CartLine | None:
        return next(
            (line for line in self.rows.values() if line.owner == owner and line.product_id == product_id), None
        )

    async def add(self, line: CartLine) -> tuple[CartLine, bool] | None:
        stored = self._find(line.owner, line.product_id)
        if stored is not None:
            if stored.quantity + line.quantity > QUANTITY_MAX:
                return None
            stored.quantity += line.quantity
            stored.price_at_add = line.price_at_add
            stored.updated_at = line.updated_at
            return copy.copy(stored), False
        self.rows[line.id] = copy.copy(line)
        return copy.copy(line), True

    async def add_capped(self, lines: Sequence[tuple[CartLine, int]]) -> None:
        for line, cap in lines:
            stored = self._find(line.owner, line.product_id)
            if stored is None:
                self.rows[line.id] = copy.copy(line)
                continue
            stored.quantity = merged_quantity(current=stored.quantity, added=line.quantity, cap=cap)
            stored.price_at_add = line.price_at_add
            stored.updated_at = line.updated_at

    async def set_quantity(self, line_id: uuid.UUID, owner: CartOwner, quantity: int, now: datetime) -> bool:
        stored = self.rows.get(line_id)
        if stored is None or stored.owner != owner:
            return False
        stored.quantity = quantity
        stored.updated_at = now
        return True

    async def remove(self, line_id: uuid.UUID, owner: CartOwner) -> bool:
        stored = self.rows.get(line_id)
        if stored is None or stored.owner != owner:
            return False
        del self.rows[line_id]
        return True

    async def clear(self, owner: CartOwner) -> None:
        for line_id in [line.id for line in self.rows.values() if line.owner == owner]:
            del self.rows[line_id]

    async def take_for_checkout(self, owner: CartOwner) -> list[CartEntry]:
        entries = await self.entries(owner)
        for entry in entries:
            del self.rows[entry.id]
        return entries

    async def entries(self, owner: CartOwner, *, line_id: uuid.UUID | None = None) -> list[CartEntry]:
        found: list[CartEntry] = []
        lines = sorted(self.rows.values(), key=lambda line: (line.created_at, line.id))
        for line in lines:
            if line.owner != owner or (line_id is not None and line.id != line_id):
                continue
            product = _live(self.products, line.product_id)
            seller = self.users.get(product.seller_id) if product is not None else None
            if product is None or seller is None:
                continue
            seller_view = CartSellerView(id=seller.id, username=seller.username)
            found.append(view_of(CartEntry, line, product=view_of(CartProductView, product, seller=seller_view)))
        return found


class MemoryGuestCartRepository:
    def __init__(self, store: MemoryStore) -> None:
        self.rows: dict[uuid.UUID, GuestCart] = store.table("guest_carts")
        self.lines: dict[uuid.UUID, CartLine] = store.table("cart_items")

    async def add(self, cart: GuestCart) -> None:
        if any(other.token_hash == cart.token_hash for other in self.rows.values()):
            raise Conflict("That token is taken.", field="cart_token")
        self.rows[cart.id] = copy.copy(cart)

    async def get_by_hash(self, token_hash: str) -> GuestCart | None:
        found = next((cart for cart in self.rows.values() if cart.token_hash == token_hash), None)
        return copy.copy(found) if found is not None else None

    async def touch(self, cart_id: uuid.UUID, now: datetime) -> None:
        cart = self.rows.get(cart_id)
        if cart is not None and cart.spent_at is None and cart.last_used_at < now:
            cart.last_used_at = now

    async def hold(self, cart_id: uuid.UUID) -> bool:
        cart = self.rows.get(cart_id)  # units of work run one at a time: nothing to lock
        return cart is not None and cart.spent_at is None

    async def spend(self, token_hash: str, *, now: datetime, used_after: datetime) -> uuid.UUID | None:
        for cart in self.rows.values():
            if cart.token_hash == token_hash and cart.spent_at is None and cart.last_used_at > used_after:
                cart.spent_at = now
                return cart.id
        return None

    async def purge(self, *, unused_since: datetime, limit: int) -> int:
        stale = sorted((c for c in self.rows.values() if c.last_used_at < unused_since), key=lambda c: c.last_used_at)
        ids = {cart.id for cart in stale[:limit]}
        for line_id in [line.id for line in self.lines.values() if line.owner.guest_cart_id in ids]:
            del self.lines[line_id]
        for cart_id in ids:
            del self.rows[cart_id]
        return len(ids)


class MemoryInventoryRepository:
    def __init__(self, store: MemoryStore) -> None:
        self.products: dict[uuid.UUID, Product] = store.table("products")

    async def purchasable(self, product_id: uuid.UUID) -> Purchasable | None:
        product = _live(self.products, product_id)
        if product is None:
            return None
        return Purchasable(
            id=product.id, seller_id=product.seller_id, name=product.name, price=product.price, stock=product.stock
        )

    async def take_all(self, quantities: Mapping[uuid.UUID, int], now: datetime) -> uuid.UUID | None:
        for product_id in sorted(quantities):
            product = _live(self.products, product_id)
            if product is None or product.stock < quantities[product_id]:
                return product_id
        for product_id, quantity in quantities.items():
            product = self.products[product_id]
            product.stock -= quantity
            product.updated_at = now
        return None

    async def put_back_all(self, quantities: Mapping[uuid.UUID, int], now: datetime) -> None:
        for product_id, quantity in quantities.items():
            product = self.products.get(product_id)
            if product is not None:
                product.stock += quantity
                product.updated_at = now


def _newest_first(after: Keyset | None, created_at: datetime, row_id: uuid.UUID) -> bool:
    return after is None or (created_at, row_id) < after


class MemoryOrderRepository:
    def __init__(self, store: MemoryStore) -> None:
        self.rows: dict[uuid.UUID, Order] = store.table("orders")

    async def add(self, order: Order) -> bool:
        if order.idempotency_key is not None and any(
            other.buyer_id == order.buyer_id and other.idempotency_key == order.idempotency_key
            for other in self.rows.values()
        ):
            return False
        self.rows[order.id] = copy.deepcopy(order)
        return True

    async def get(self, order_id: uuid.UUID, buyer_id: uuid.UUID) -> Order | None:
        order = self.rows.get(order_id)
        return copy.deepcopy(order) if order is not None and order.buyer_id == buyer_id else None

    async def get_by_idempotency_key(self, buyer_id: uuid.UUID, key: str) -> Order | None:
        for order in self.rows.values():
            if order.buyer_id == buyer_id and order.idempotency_key == key:
                return copy.deepcopy(order)
        return None

    async def list_for_buyer(self, buyer_id: uuid.UUID, *, limit: int, after: Keyset | None) -> list[Order]:
        mine = [
            order
            for order in self.rows.values()
            if order.buyer_id == buyer_id and _newest_first(after, order.created_at, order.id)
        ]
        mine.sort(key=lambda order: (order.created_at, order.id), reverse=True)
        return [copy.deepcopy(order) for order in mine[:limit]]

    async def change_status(
        self, order_id: uuid.UUID, *, expected: OrderStatus, new: OrderStatus, now: datetime
    ) -> bool:
        order = self.rows.get(order_id)
        if order is None or order.status is not expected:
            return False
        order.status = new
        order.updated_at = now
        return True

    async def sales(self, seller_id: uuid.UUID, *, limit: int, after: Keyset | None) -> list[SaleEntry]:
        sold = [
            SaleEntry(
                line_id=line.id,
                sale=view_of(SaleView, line, order_id=order.id, status=order.status.value, created_at=order.created_at),
            )
            for order in self.rows.values()
            for line in order.lines
            if line.seller_id == seller_id and _newest_first(after, order.created_at, line.id)
        ]
        sold.sort(key=lambda entry: (entry.sale.created_at, entry.line_id), reverse=True)
        return sold[:limit]


class MemoryCartReads:
    """``CartReads`` over the in-memory tables (reads outside a unit of work, like the SQL one's)."""

    def __init__(self, store: MemoryStore) -> None:
        self.cart = MemoryCartRepository(store)
        self.guest_carts = MemoryGuestCartRepository(store)

    async def entries(self, owner: CartOwner) -> list[CartEntry]:
        return await self.cart.entries(owner)

    async def guest_cart(self, token_hash: str) -> GuestCart | None:
        return await self.guest_carts.get_by_hash(token_hash)
