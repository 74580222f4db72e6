"""Guest carts on in-memory adapters: the same cart rules, tokens, sliding expiry, merge at login."""

from __future__ import annotations

from decimal import Decimal

import pytest

from application.identity import Guest, Principal
from application.opaque_tokens import hash_secret
from application.use_cases import auth, cart
from domain.errors import AuthenticationFailed, Conflict, NotFound, RuleViolation
from domain.orders import GUEST_CART_LIFETIME, merged_quantity
from domain.users import Role
from tests.unit.fakes import make_world
from tests.unit.test_cart_use_cases import Shop

PASSWORD = "correct horse battery"


@pytest.fixture
def shop() -> Shop:
    return Shop(make_world())


async def new_guest(shop: Shop) -> tuple[str, Guest]:
    token = await cart.CreateGuestCart(shop.w.uow, shop.w.clock).execute()
    cart_id = await resolver(shop).execute(token)
    assert cart_id is not None
    return token, Guest(cart_id=cart_id)


def resolver(shop: Shop) -> cart.ResolveCartToken:
    return cart.ResolveCartToken(shop.w.uow, shop.w.clock, shop.w.cart_reads)


async def registered(shop: Shop, name: str) -> Principal:
    user = await auth.Register(shop.w.deps).execute(username=name, email=f"{name}@example.com", password=PASSWORD)
    return Principal(id=user.id, role=Role.USER)


async def login(shop: Shop, name: str, token: str | None) -> None:
    await auth.Login(shop.w.deps).execute(login=name, password=PASSWORD, cart_token=token)


def quantities(view: cart.CartView) -> dict[str, int]:
    return {item.product.name: item.quantity for item in view.items}


async def test_tokens_are_random_long_and_stored_only_hashed(shop: Shop) -> None:
    tokens = {await cart.CreateGuestCart(shop.w.uow, shop.w.clock).execute() for _ in range(20)}
    assert len(tokens) == 20 and all(len(t) >= 43 for t in tokens)  # 32 random bytes, url-safe
    stored = shop.store["guest_carts"].values()
    assert {c.token_hash for c in stored} == {hash_secret(t) for t in tokens}
    assert not any(t in repr(c) for c in stored for t in tokens)


async def test_a_guest_cart_follows_the_cart_rules_and_owns_no_products(shop: Shop) -> None:
    seller = shop.user("seller")
    _, guest = await new_guest(shop)
    pid = shop.product(seller, price="0.10", stock=5, name="Dime")
    first, created = await cart.AddToCart(shop.w.uow, shop.w.clock).execute(guest, product_id=pid, quantity=2)
    again, created_again = await cart.AddToCart(shop.w.uow, shop.w.clock).execute(guest, product_id=pid)
    assert created and not created_again and again.id == first.id and again.quantity == 3
    with pytest.raises(Conflict):  # 3 + 3 > stock 5
        await cart.AddToCart(shop.w.uow, shop.w.clock).execute(guest, product_id=pid, quantity=3)
    with pytest.raises(RuleViolation):
        await cart.AddToCart(shop.w.uow, shop.w.clock).execute(guest, product_id=pid, quantity=100)
    shop.stored_product(pid).price = Decimal("0.20")
    view = await cart.GetCart(shop.w.cart_reads).execute(guest)
    assert view.total == Decimal("0.60") and view.items[0].price_changed
    # The seller's own cart is another cart: the guest's line is not theirs to change.
    with pytest.raises(NotFound):
        await cart.ChangeCartQuantity(shop.w.uow, shop.w.clock).execute(seller, line_id=first.id, quantity=1)
    _, other_guest = await new_guest(shop)
    with pytest.raises(NotFound):
        await cart.RemoveCartItem(shop.w.uow).execute(other_guest, line_id=first.id)
    changed = await cart.ChangeCartQuantity(shop.w.uow, shop.w.clock).execute(guest, line_id=first.id, quantity=5)
    assert changed.quantity == 5
    shop.stored_product(pid).withdrawn_at = shop.w.clock.now()
    assert (await cart.GetCart(shop.w.cart_reads).execute(guest)).items == []


async def test_tokens_expire_30_days_after_last_use_and_are_touched_at_most_hourly(shop: Shop) -> None:
    token, guest = await new_guest(shop)

    def last_used() -> object:
        return shop.store["guest_carts"][guest.cart_id].last_used_at  # the store is copied per commit

    created = last_used()
    shop.w.clock.advance(minutes=59)
    assert await resolver(shop).execute(token) == guest.cart_id
    assert last_used() == created  # touched less than an hour ago: no write
    shop.w.clock.advance(minutes=2)
    assert await resolver(shop).execute(token) == guest.cart_id
    assert last_used() == shop.w.clock.now()  # the sliding expiry moved
    shop.w.clock.advance(days=29, hours=23)
    assert await resolver(shop).execute(token) == guest.cart_id  # still alive: 30 days since last use
    shop.w.clock.current = shop.store["guest_carts"][guest.cart_id].last_used_at + GUEST_CART_LIFETIME
    assert await resolver(shop).execute(token) is None
    assert await resolver(shop).execute("") is None
    assert await resolver(shop).execute("x" * 10_000) is None
    assert await resolver(shop).execute("not-a-token") is None


async def test_login_merges_quantities_capped_and_drops_own_and_withdrawn(shop: Shop) -> None:
    seller = shop.user("seller")
    dora = await registered(shop, "dora")
    capped = shop.product(seller, stock=4, name="Capped")
    limit = shop.product(seller, stock=500, name="Limit")
    fresh = shop.product(seller, stock=9, name="Fresh")
    sold_out = shop.product(seller, stock=2, name="SoldOut")
    gone = shop.product(seller, name="Gone")
    own = shop.product(dora, name="Own")
    add = cart.AddToCart(shop.w.uow, shop.w.clock)
    await add.execute(dora, product_id=capped, quantity=2)
    await add.execute(dora, product_id=limit, quantity=60)
    token, guest = await new_guest(shop)
    for product, quantity in ((capped, 3), (limit, 50), (fresh, 2), (sold_out, 1), (gone, 1), (own, 1)):
        await add.execute(guest, product_id=product, quantity=quantity)
    shop.stored_product(gone).withdrawn_at = shop.w.clock.now()
    shop.stored_product(sold_out).stock = 0
    await login(shop, "dora", token)
    assert quantities(await cart.GetCart(shop.w.cart_reads).execute(dora)) == {"Capped": 4, "Limit": 99, "Fresh": 2}
    assert await resolver(shop).execute(token) is None  # spent
    with pytest.raises(AuthenticationFailed):  # a holder of the spent token can no longer write to it
        await add.execute(guest, product_id=fresh)
    assert all(line.owner.guest_cart_id is None for line in shop.store["cart_items"].values())
    # The spent token merges nothing a second time, and the login still works.
    await login(shop, "dora", token)
    assert quantities(await cart.GetCart(shop.w.cart_reads).execute(dora)) == {"Capped": 4, "Limit": 99, "Fresh": 2}


async def test_a_bad_cart_token_never_fails_the_login(shop: Shop) -> None:
    await registered(shop, "erin")
    for token in ("unknown", "", "x" * 5000):
        await login(shop, "erin", token)
    token, _ = await new_guest(shop)
    shop.w.clock.advance(days=31)
    await login(shop, "erin", token)  # expired: nothing merged, login fine
    assert await resolver(shop).execute(token) is None


async def test_a_failed_login_does_not_spend_the_token(shop: Shop) -> None:
    await registered(shop, "finn")
    token, guest = await new_guest(shop)
    with pytest.raises(AuthenticationFailed):
        await auth.Login(shop.w.deps).execute(login="finn", password="wrong password!", cart_token=token)
    assert await resolver(shop).execute(token) == guest.cart_id


async def test_purge_removes_only_carts_unused_for_30_days(shop: Shop) -> None:
    seller = shop.user("seller")
    pid = shop.product(seller)
    old_token, old = await new_guest(shop)
    await cart.AddToCart(shop.w.uow, shop.w.clock).execute(old, product_id=pid)
    shop.w.clock.advance(days=20)
    new_token, _ = await new_guest(shop)
    shop.w.clock.advance(days=10, seconds=1)
    assert await cart.PurgeGuestCarts(shop.w.uow, shop.w.clock, batch=1).execute() == 1
    assert await resolver(shop).execute(new_token) is not None
    assert await resolver(shop).execute(old_token) is None
    assert shop.store["cart_items"] == {}


@pytest.mark.parametrize(
    ("current", "added", "cap", "expected"),
    [(0, 3, 99, 3), (2, 3, 4, 4), (60, 50, 99, 99), (7, 1, 5, 7), (5, 5, 10, 10)],
)
def test_merged_quantity(current: int, added: int, cap: int, expected: int) -> None:
    assert merged_quantity(current=current, added=added, cap=cap) == expected
