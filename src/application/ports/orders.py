"""Ports for carts, orders and the stock they move, and the read models they return.

The cart and order repositories read and write the ``products`` rows they need (price, stock,
seller, name, withdrawn) themselves, so checkout stays one transaction over a few statements and
does not wait on the catalog's code.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Protocol

from msgspec import Meta, Struct

from application.pagination import Keyset
from domain.orders import CartLine, CartOwner, GuestCart, Order, OrderStatus

# Encoded as a JSON string with two places ("19.99"), never a float.
Money = Annotated[Decimal, Meta(description="A decimal string with two places.", examples=["19.99"])]


class CartSellerView(Struct):
    id: uuid.UUID
    username: str


class CartProductView(Struct):
    """The product as it is now (current price and stock), not as it was when added."""

    id: uuid.UUID
    name: str
    price: Money
    image_url: str | None
    stock: int
    seller: CartSellerView


class CartItemView(Struct):
    id: uuid.UUID
    product: CartProductView
    quantity: int
    unit_price: Money
    line_total: Money
    price_changed: bool


class CartView(Struct):
    items: list[CartItemView]
    total: Money


class OrderItemView(Struct):
    product_id: uuid.UUID
    name: str
    unit_price: Money
    quantity: int
    line_total: Money


class OrderView(Struct):
    id: uuid.UUID
    status: str
    items: list[OrderItemView]
    total: Money
    created_at: datetime


class SaleView(Struct):
    """One order line of the seller's product, with the order's current status."""

    order_id: uuid.UUID
    product_id: uuid.UUID
    name: str
    unit_price: Money
    quantity: int
    line_total: Money
    status: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class CartEntry:
    """A cart line joined with its live product: what the cart view and checkout need."""

    id: uuid.UUID
    quantity: int
    price_at_add: Decimal
    product: CartProductView


@dataclass(frozen=True, slots=True)
class SaleEntry:
    """A sale plus the order line's id, which the keyset cursor needs and clients do not."""

    line_id: uuid.UUID
    sale: SaleView


@dataclass(frozen=True, slots=True)
class Purchasable:
    """The few product facts adding to a cart checks; only live (not withdrawn) products."""

    id: uuid.UUID
    seller_id: uuid.UUID
    name: str
    price: Decimal
    stock: int


class CartRepository(Protocol):
    """Cart lines of one owner: a user or a guest cart (``CartOwner``), with the same rules."""

    async def add(self, line: CartLine) -> tuple[CartLine, bool] | None:
        """Upsert by (owner, product): a new line, or the existing one with ``line.quantity`` added.

        Returns the stored line and whether it was created; None when the summed quantity would
        exceed the maximum (nothing changes then). Atomic, so concurrent adds never make two lines.
        """
        ...

    async def add_capped(self, lines: Sequence[tuple[CartLine, int]]) -> None:
        """Upsert each (line, cap) like ``add``, but the summed quantity is clamped to ``cap``
        instead of refused, and a line already above ``cap`` keeps its quantity
        (``domain.orders.merged_quantity``); the line's ``price_at_add`` is taken. One batch;
        atomic per line, as ``add``."""
        ...

    async def set_quantity(self, line_id: uuid.UUID, owner: CartOwner, quantity: int, now: datetime) -> bool:
        """False when the line does not exist or is in another cart."""
        ...

    async def remove(self, line_id: uuid.UUID, owner: CartOwner) -> bool: ...

    async def clear(self, owner: CartOwner) -> None: ...

    async def entries(self, owner: CartOwner, *, line_id: uuid.UUID | None = None) -> list[CartEntry]:
        """The owner's lines of live products in one statement, oldest first."""
        ...

    async def take_for_checkout(self, owner: CartOwner) -> list[CartEntry]:
        """Take the owner's lines of live products out of the cart and return them, oldest first
        (on Postgres in one statement). The lines stay locked until the transaction ends, so two
        checkouts of one cart take turns and the second finds them gone; a checkout that does not
        commit leaves them in the cart."""
        ...


class GuestCartRepository(Protocol):
    async def add(self, cart: GuestCart) -> None: ...

    async def get_by_hash(self, token_hash: str) -> GuestCart | None:
        """The guest cart with this token hash, live or not (the caller decides)."""
        ...

    async def touch(self, cart_id: uuid.UUID, now: datetime) -> None:
        """Move ``last_used_at`` forward to ``now`` (never back) while the cart is unspent."""
        ...

    async def hold(self, cart_id: uuid.UUID) -> bool:
        """Keep an unspent cart from being spent (merged) until this transaction ends, so a line
        written now is never left behind by a racing merge; False when it is spent or gone."""
        ...

    async def spend(self, token_hash: str, *, now: datetime, used_after: datetime) -> uuid.UUID | None:
        """Mark the live cart with this token spent, atomically: its id for the one caller that
        wins, None for an unknown, expired (last used at or before ``used_after``) or already
        spent token. Racing callers wait for each other; only one gets the id."""
        ...

    async def purge(self, *, unused_since: datetime, limit: int) -> int:
        """Delete up to ``limit`` guest carts last used before ``unused_since`` (spent ones
        included) with their lines; how many carts went."""
        ...


class InventoryRepository(Protocol):
    async def purchasable(self, product_id: uuid.UUID) -> Purchasable | None:
        """A live product, or None when it does not exist or was withdrawn."""
        ...

    async def take_all(self, quantities: Mapping[uuid.UUID, int], now: datetime) -> uuid.UUID | None:
        """Take stock for a whole order (product id -> quantity), all or nothing, in one call.

        Returns None when every product is live and has at least its quantity left (then all are
        decremented), else the first such product in product-id order that falls short (withdrawn
        or missing counts as short) and nothing is taken. Rows are locked in product-id order, so
        concurrent callers with overlapping products cannot deadlock.
        """
        ...

    async def put_back_all(self, quantities: Mapping[uuid.UUID, int], now: datetime) -> None:
        """Return stock for a whole order (product id -> quantity) in one batch, in product-id
        order like ``take_all``; a withdrawn product gets it back too, a deleted one is skipped."""
        ...


class OrderRepository(Protocol):
    async def add(self, order: Order) -> bool:
        """Insert the order and its lines; False (nothing written) when the buyer already has an
        order with the same idempotency key. The unique constraint decides, so racing retries
        wait for each other and exactly one order is made."""
        ...

    async def get(self, order_id: uuid.UUID, buyer_id: uuid.UUID) -> Order | None:
        """The buyer's own order, with its lines; None for someone else's."""
        ...

    async def get_by_idempotency_key(self, buyer_id: uuid.UUID, key: str) -> Order | None: ...

    async def list_for_buyer(self, buyer_id: uuid.UUID, *, limit: int, after: Keyset | None) -> list[Order]:
        """Newest first, strictly after ``after``."""
        ...

    async def change_status(
        self, order_id: uuid.UUID, *, expected: OrderStatus, new: OrderStatus, now: datetime
    ) -> bool:
        """Guarded update: False when the order is no longer in ``expected`` (someone was first)."""
        ...

    async def sales(self, seller_id: uuid.UUID, *, limit: int, after: Keyset | None) -> list[SaleEntry]:
        """The seller's order lines, newest first, strictly after ``after``."""
        ...
