"""The shopping cart: one line per product, current prices, exact totals."""

from __future__ import annotations

import uuid

from application.identity import Principal
from application.ports.cart_reads import CartReads
from application.ports.clock import Clock
from application.ports.orders import CartEntry, CartItemView, CartView
from application.ports.persistence import UnitOfWorkFactory
from domain.errors import NotFound, RuleViolation
from domain.ids import new_id
from domain.orders import (
    QUANTITY_MAX,
    CartLine,
    cart_total,
    ensure_buyable,
    ensure_in_stock,
    line_total,
    validate_quantity,
)

_NO_ITEM = "No such cart item."
_NO_PRODUCT = "No such product (unknown or withdrawn)."


def cart_item_view(entry: CartEntry) -> CartItemView:
    """A line at today's price; ``price_changed`` tells the buyer it moved since they added it."""
    price = entry.product.price
    return CartItemView(
        id=entry.id,
        product=entry.product,
        quantity=entry.quantity,
        unit_price=price,
        line_total=line_total(price, entry.quantity),
        price_changed=price != entry.price_at_add,
    )


def cart_view(entries: list[CartEntry]) -> CartView:
    items = [cart_item_view(entry) for entry in entries]
    return CartView(items=items, total=cart_total([item.line_total for item in items]))


class GetCart:
    """The caller's cart; lines of withdrawn products have dropped out.

    With ``reads`` (a single-statement read port) it runs outside a unit of work; without, it
    reads through one (the in-memory and SQLite wiring).
    """

    def __init__(self, uow: UnitOfWorkFactory, reads: CartReads | None = None) -> None:
        self.uow = uow
        self.reads = reads

    async def execute(self, principal: Principal) -> CartView:
        if self.reads is not None:
            return cart_view(await self.reads.entries(principal.id))
        async with self.uow() as uow:
            entries = await uow.cart.entries(principal.id)
        return cart_view(entries)


class AddToCart:
    """Put a product in the cart, or add to its line (quantities add, never a second line).

    An unknown or withdrawn ``product_id`` is a 422 naming the field, like an unknown
    ``category_id`` when listing a product: the body refers to something that is not there (a
    withdrawn product no longer exists for buyers). Adding again refreshes the line's reference
    price: the buyer has just seen the current one.
    """

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self.uow = uow
        self.clock = clock

    async def execute(
        self, principal: Principal, *, product_id: uuid.UUID, quantity: int = 1
    ) -> tuple[CartItemView, bool]:
        validate_quantity(quantity)
        now = self.clock.now()
        async with self.uow() as uow:
            product = await uow.inventory.purchasable(product_id)
            if product is None:
                raise RuleViolation(_NO_PRODUCT, field="product_id")
            ensure_buyable(
                buyer_id=principal.id,
                seller_id=product.seller_id,
                quantity=quantity,
                stock=product.stock,
                name=product.name,
            )
            line = CartLine(
                id=new_id(),
                user_id=principal.id,
                product_id=product.id,
                quantity=quantity,
                price_at_add=product.price,
                created_at=now,
                updated_at=now,
            )
            stored = await uow.cart.add(line)
            if stored is None:
                raise RuleViolation(f"A cart holds at most {QUANTITY_MAX} of one product.", field="quantity")
            line, created = stored
            # The summed quantity must fit the stock too; raising here rolls the upsert back.
            ensure_in_stock(quantity=line.quantity, stock=product.stock, name=product.name)
            entries = await uow.cart.entries(principal.id, line_id=line.id)
            if not entries:  # withdrawn in the meantime
                raise RuleViolation(_NO_PRODUCT, field="product_id")
            await uow.commit()
        return cart_item_view(entries[0]), created


class ChangeCartQuantity:
    """Set a line's quantity (1–99, at most the stock); others' lines do not exist (404)."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self.uow = uow
        self.clock = clock

    async def execute(self, principal: Principal, *, line_id: uuid.UUID, quantity: int) -> CartItemView:
        validate_quantity(quantity)
        async with self.uow() as uow:
            if not await uow.cart.set_quantity(line_id, principal.id, quantity, self.clock.now()):
                raise NotFound(_NO_ITEM, field="item_id")
            entries = await uow.cart.entries(principal.id, line_id=line_id)
            if not entries:  # the product was withdrawn: the line is gone for the buyer
                raise NotFound(_NO_ITEM, field="item_id")
            ensure_in_stock(quantity=quantity, stock=entries[0].product.stock, name=entries[0].product.name)
            await uow.commit()
        return cart_item_view(entries[0])


class RemoveCartItem:
    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self.uow = uow

    async def execute(self, principal: Principal, *, line_id: uuid.UUID) -> None:
        async with self.uow() as uow:
            if not await uow.cart.remove(line_id, principal.id):
                raise NotFound(_NO_ITEM, field="item_id")
            await uow.commit()


class ClearCart:
    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self.uow = uow

    async def execute(self, principal: Principal) -> None:
        async with self.uow() as uow:
            await uow.cart.clear(principal.id)
            await uow.commit()
