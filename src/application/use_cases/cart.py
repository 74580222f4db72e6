"""The shopping cart: one line per product, current prices, exact totals.

A cart belongs to a user or to a guest cart (``CartOwner``); every use case here serves both
with the same rules, through the same repository. A guest owns no products, so the own-product
rule never stops a guest; it applies when a guest cart is merged into a user's at login.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from application.identity import CartHolder
from application.opaque_tokens import hash_secret, new_secret
from application.ports.cart_reads import CartReads
from application.ports.clock import Clock
from application.ports.orders import CartEntry, CartItemView, CartView
from application.ports.persistence import UnitOfWork, UnitOfWorkFactory
from application.use_cases.base import UnitOfWorkUseCase
from domain.errors import AuthenticationFailed, NotFound, RuleViolation
from domain.ids import new_id
from domain.orders import (
    GUEST_CART_LIFETIME,
    QUANTITY_MAX,
    CartLine,
    CartOwner,
    GuestCart,
    cart_total,
    ensure_buyable,
    ensure_in_stock,
    line_total,
    validate_quantity,
)

_NO_ITEM = "No such cart item."
_SPENT = "The cart token is unknown, expired or already merged."
_NO_PRODUCT = "No such product (unknown or withdrawn)."


async def _hold_guest_cart(uow: UnitOfWork, owner: CartOwner) -> None:
    """A guest cart's line is written only while the cart is unspent, and a racing merge at login
    waits for it (``GuestCartRepository.hold``); a user's cart needs nothing."""
    if owner.guest_cart_id is not None and not await uow.guest_carts.hold(owner.guest_cart_id):
        raise AuthenticationFailed(_SPENT)


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
    """The caller's cart; lines of withdrawn products have dropped out (one read, no transaction)."""

    def __init__(self, reads: CartReads) -> None:
        self.reads = reads

    async def execute(self, holder: CartHolder) -> CartView:
        return cart_view(await self.reads.entries(holder.cart_owner))


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
        self, holder: CartHolder, *, product_id: uuid.UUID, quantity: int = 1
    ) -> tuple[CartItemView, bool]:
        validate_quantity(quantity)
        owner = holder.cart_owner
        now = self.clock.now()
        async with self.uow() as uow:
            await _hold_guest_cart(uow, owner)
            product = await uow.inventory.purchasable(product_id)
            if product is None:
                raise RuleViolation(_NO_PRODUCT, field="product_id")
            ensure_buyable(
                buyer_id=owner.user_id,
                seller_id=product.seller_id,
                quantity=quantity,
                stock=product.stock,
                name=product.name,
            )
            line = CartLine(
                id=new_id(),
                owner=owner,
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
            entries = await uow.cart.entries(owner, line_id=line.id)
            if not entries:  # withdrawn in the meantime
                raise RuleViolation(_NO_PRODUCT, field="product_id")
            await uow.commit()
        return cart_item_view(entries[0]), created


class ChangeCartQuantity:
    """Set a line's quantity (1–99, at most the stock); others' lines do not exist (404)."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self.uow = uow
        self.clock = clock

    async def execute(self, holder: CartHolder, *, line_id: uuid.UUID, quantity: int) -> CartItemView:
        validate_quantity(quantity)
        owner = holder.cart_owner
        async with self.uow() as uow:
            await _hold_guest_cart(uow, owner)
            if not await uow.cart.set_quantity(line_id, owner, quantity, self.clock.now()):
                raise NotFound(_NO_ITEM, field="item_id")
            entries = await uow.cart.entries(owner, line_id=line_id)
            if not entries:  # the product was withdrawn: the line is gone for the buyer
                raise NotFound(_NO_ITEM, field="item_id")
            ensure_in_stock(quantity=quantity, stock=entries[0].product.stock, name=entries[0].product.name)
            await uow.commit()
        return cart_item_view(entries[0])


class RemoveCartItem(UnitOfWorkUseCase):
    async def execute(self, holder: CartHolder, *, line_id: uuid.UUID) -> None:
        async with self.uow() as uow:
            if not await uow.cart.remove(line_id, holder.cart_owner):
                raise NotFound(_NO_ITEM, field="item_id")
            await uow.commit()


class ClearCart(UnitOfWorkUseCase):
    async def execute(self, holder: CartHolder) -> None:
        async with self.uow() as uow:
            await uow.cart.clear(holder.cart_owner)
            await uow.commit()


# ``last_used_at`` is written at most this often per guest cart, not on every request; a cart
# may so expire up to this much before 30 days after its very last use.
GUEST_TOUCH_INTERVAL = timedelta(hours=1)
# Our tokens are 43 characters; anything much longer cannot be one and is not even hashed.
_TOKEN_MAX_LENGTH = 256


class CreateGuestCart:
    """A new, empty guest cart; the caller gets its token once (only its hash is stored)."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self.uow = uow
        self.clock = clock

    async def execute(self) -> str:
        now = self.clock.now()
        token = new_secret()
        async with self.uow() as uow:
            await uow.guest_carts.add(
                GuestCart(id=new_id(), token_hash=hash_secret(token), created_at=now, last_used_at=now)
            )
            await uow.commit()
        return token


class ResolveCartToken:
    """The live guest cart behind an ``X-Cart-Token``, or None (unknown, expired or spent).

    A read on the hot path (one statement, no transaction); the sliding expiry is kept by a write
    only when the stored last use is older than ``GUEST_TOUCH_INTERVAL``.
    """

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, reads: CartReads) -> None:
        self.uow = uow
        self.clock = clock
        self.reads = reads

    async def execute(self, token: str) -> uuid.UUID | None:
        if not token or len(token) > _TOKEN_MAX_LENGTH:
            return None
        found = await self.reads.guest_cart(hash_secret(token))
        now = self.clock.now()
        if found is None or not found.is_live(now):
            return None
        if now - found.last_used_at >= GUEST_TOUCH_INTERVAL:
            async with self.uow() as uow:
                await uow.guest_carts.touch(found.id, now)
                await uow.commit()
        return found.id


async def merge_guest_cart(uow: UnitOfWork, *, user_id: uuid.UUID, token: str, now: datetime) -> bool:
    """Move a guest cart into the user's cart inside the caller's unit of work (login's).

    Spends the token first with a guarded update, so of racing logins with one token exactly
    one merges and the others find it spent. Quantities add per product, capped by the stock and
    the per-line limit (a line already above the cap keeps its quantity); lines of the user's
    own products and of withdrawn or sold-out products are dropped. The guest's lines are then
    deleted. False, and nothing changed, for an unknown, expired or spent token: the login goes
    on without a merge.
    """
    if not token or len(token) > _TOKEN_MAX_LENGTH:
        return False
    guest_id = await uow.guest_carts.spend(hash_secret(token), now=now, used_after=now - GUEST_CART_LIFETIME)
    if guest_id is None:
        return False
    guest, mine = CartOwner.of_guest(guest_id), CartOwner.of_user(user_id)
    entries = await uow.cart.entries(guest)
    moved = []
    for entry in entries:
        cap = min(QUANTITY_MAX, entry.product.stock)
        if entry.product.seller.id == user_id or cap < 1:
            continue
        line = CartLine(
            id=new_id(),
            owner=mine,
            product_id=entry.product.id,
            quantity=min(entry.quantity, cap),
            price_at_add=entry.price_at_add,
            created_at=now,
            updated_at=now,
        )
        moved.append((line, cap))
    await uow.cart.add_capped(moved)
    await uow.cart.clear(guest)
    return True


PURGE_BATCH = 5000


class PurgeGuestCarts:
    """Delete guest carts unused for ``GUEST_CART_LIFETIME`` (and their lines), in batches."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, *, batch: int = PURGE_BATCH) -> None:
        self.uow = uow
        self.clock = clock
        self.batch = batch

    async def execute(self) -> int:
        unused_since = self.clock.now() - GUEST_CART_LIFETIME
        total = 0
        while True:
            # One short transaction per batch: SQLite's writer lock and Postgres' row locks are
            # held only briefly, and a huge backlog never becomes one giant delete.
            async with self.uow() as uow:
                purged = await uow.guest_carts.purge(unused_since=unused_since, limit=self.batch)
                await uow.commit()
            total += purged
            if purged < self.batch:
                return total
