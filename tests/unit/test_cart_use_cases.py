"""Cart, checkout, orders and sales use cases on in-memory adapters."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from application.identity import Principal
from application.jobs import SEND_ORDER_CONFIRMATION, SEND_SALE_NOTICE, UPDATE_FEED
from application.use_cases import cart, orders
from domain.catalog import Product
from domain.errors import Conflict, Forbidden, InvalidInput, NotFound, RuleViolation
from domain.ids import new_id
from domain.users import Role, User
from tests.unit.fakes import World, make_world

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Shop:
    """The use cases wired onto one in-memory world, plus helpers to stock it."""

    w: World

    @property
    def store(self) -> dict[str, dict]:
        return self.w.uow.store.tables

    def user(self, name: str) -> Principal:
        user = User(
            id=new_id(),
            username=name,
            email=f"{name}@example.com",
            password_hash="!",
            role=Role.USER,
            created_at=NOW,
            updated_at=NOW,
        )
        self.w.uow.store.table("users")[user.id] = user
        return Principal(id=user.id, role=Role.USER)

    def product(self, seller: Principal, *, price: str = "10.00", stock: int = 10, name: str = "Thing") -> uuid.UUID:
        product = Product(
            id=new_id(),
            seller_id=seller.id,
            category_id=new_id(),
            name=name,
            description="",
            price=Decimal(price),
            image_url=None,
            stock=stock,
            created_at=NOW,
            updated_at=NOW,
        )
        self.w.uow.store.table("products")[product.id] = product
        return product.id

    def stored_product(self, product_id: uuid.UUID) -> Product:
        product: Product = self.w.uow.store.table("products")[product_id]
        return product

    @property
    def deps(self) -> orders.OrderDeps:
        return orders.OrderDeps(uow=self.w.uow, clock=self.w.clock, jobs=self.w.deps.jobs)

    async def add(self, who: Principal, product_id: uuid.UUID, quantity: int = 1) -> tuple[cart.CartItemView, bool]:
        return await cart.AddToCart(self.w.uow, self.w.clock).execute(who, product_id=product_id, quantity=quantity)

    async def cart(self, who: Principal) -> cart.CartView:
        return await cart.GetCart(self.w.cart_reads).execute(who)

    async def checkout(self, who: Principal, key: str | None = None) -> orders.OrderView:
        return await orders.Checkout(self.deps).execute(who, idempotency_key=key)


@pytest.fixture
def shop() -> Shop:
    return Shop(make_world())


async def test_adding_twice_sums_into_one_line(shop: Shop) -> None:
    seller, buyer = shop.user("seller"), shop.user("buyer")
    pid = shop.product(seller, stock=50)
    first, created = await shop.add(buyer, pid, 2)
    again, created_again = await shop.add(buyer, pid, 3)
    assert created and not created_again
    assert first.id == again.id and again.quantity == 5
    assert again.line_total == Decimal("50.00")
    assert len(shop.store["cart_items"]) == 1


async def test_cart_totals_are_exact_and_prices_current(shop: Shop) -> None:
    seller, buyer = shop.user("seller"), shop.user("buyer")
    a, b = shop.product(seller, price="0.10"), shop.product(seller, price="0.20")
    await shop.add(buyer, a)
    await shop.add(buyer, b)
    view = await shop.cart(buyer)
    assert view.total == Decimal("0.30") and str(view.total) == "0.30"
    assert [item.price_changed for item in view.items] == [False, False]
    assert view.items[0].product.seller.username == "seller"
    shop.stored_product(a).price = Decimal("0.15")
    view = await shop.cart(buyer)
    assert view.items[0].unit_price == Decimal("0.15") and view.items[0].price_changed
    assert view.total == Decimal("0.35")
    # Adding again at the new price: the buyer has seen it, so it no longer counts as changed.
    await shop.add(buyer, a)
    view = await shop.cart(buyer)
    assert not view.items[0].price_changed and view.items[0].line_total == Decimal("0.30")


@pytest.mark.parametrize("quantity", [0, -1, 100])
async def test_quantity_out_of_range_is_a_rule_violation(shop: Shop, quantity: int) -> None:
    seller, buyer = shop.user("seller"), shop.user("buyer")
    pid = shop.product(seller, stock=500)
    with pytest.raises(RuleViolation):
        await shop.add(buyer, pid, quantity)


async def test_summed_quantity_over_99_is_refused_and_changes_nothing(shop: Shop) -> None:
    seller, buyer = shop.user("seller"), shop.user("buyer")
    pid = shop.product(seller, stock=500)
    await shop.add(buyer, pid, 60)
    with pytest.raises(RuleViolation):
        await shop.add(buyer, pid, 40)
    assert (await shop.cart(buyer)).items[0].quantity == 60


async def test_own_unknown_withdrawn_and_over_stock_products(shop: Shop) -> None:
    seller, buyer = shop.user("seller"), shop.user("buyer")
    pid = shop.product(seller, stock=3)
    with pytest.raises(Forbidden):
        await shop.add(seller, pid)
    with pytest.raises(RuleViolation) as unknown:  # a body naming nothing: 422, like an unknown category
        await shop.add(buyer, new_id())
    assert unknown.value.field == "product_id"
    with pytest.raises(Conflict):
        await shop.add(buyer, pid, 4)
    await shop.add(buyer, pid, 2)
    with pytest.raises(Conflict):  # 2 + 2 > 3: the summed line must fit the stock too
        await shop.add(buyer, pid, 2)
    assert (await shop.cart(buyer)).items[0].quantity == 2
    shop.stored_product(pid).withdrawn_at = NOW
    with pytest.raises(RuleViolation) as withdrawn:
        await shop.add(buyer, pid)
    assert withdrawn.value.field == "product_id"
    assert (await shop.cart(buyer)).items == []


async def test_change_and_remove_lines_only_ones_own(shop: Shop) -> None:
    seller, buyer, other = shop.user("seller"), shop.user("buyer"), shop.user("other")
    pid = shop.product(seller, stock=5)
    line, _ = await shop.add(buyer, pid)
    change = cart.ChangeCartQuantity(shop.w.uow, shop.w.clock)
    remove = cart.RemoveCartItem(shop.w.uow)
    with pytest.raises(NotFound):
        await change.execute(other, line_id=line.id, quantity=2)
    with pytest.raises(NotFound):
        await remove.execute(other, line_id=line.id)
    with pytest.raises(Conflict):
        await change.execute(buyer, line_id=line.id, quantity=6)
    changed = await change.execute(buyer, line_id=line.id, quantity=5)
    assert changed.quantity == 5 and changed.line_total == Decimal("50.00")
    await remove.execute(buyer, line_id=line.id)
    with pytest.raises(NotFound):
        await remove.execute(buyer, line_id=line.id)
    await shop.add(buyer, pid)
    await cart.ClearCart(shop.w.uow).execute(buyer)
    assert (await shop.cart(buyer)).items == []


async def test_checkout_snapshots_takes_stock_empties_cart_and_queues_mail(shop: Shop) -> None:
    seller_a, seller_b, buyer = shop.user("sa"), shop.user("sb"), shop.user("buyer")
    a = shop.product(seller_a, price="0.10", stock=5, name="Apple")
    b = shop.product(seller_b, price="0.20", stock=5, name="Bean")
    await shop.add(buyer, a, 3)
    await shop.add(buyer, b, 1)
    order = await shop.checkout(buyer)
    assert order.status == "placed" and order.total == Decimal("0.50")
    assert [(i.name, i.unit_price, i.quantity, i.line_total) for i in order.items] == [
        ("Apple", Decimal("0.10"), 3, Decimal("0.30")),
        ("Bean", Decimal("0.20"), 1, Decimal("0.20")),
    ]
    assert shop.stored_product(a).stock == 2 and shop.stored_product(b).stock == 4
    assert (await shop.cart(buyer)).items == []
    shop.stored_product(a).price = Decimal("9.99")
    shop.stored_product(a).name = "Renamed"
    again = await orders.GetOrder(shop.w.uow).execute(buyer, order_id=order.id)
    assert again == order  # the snapshot does not follow the catalog
    kinds = sorted(kind for kind, _, _ in shop.w.queue.jobs)
    assert kinds == [SEND_ORDER_CONFIRMATION, SEND_SALE_NOTICE, SEND_SALE_NOTICE, UPDATE_FEED]
    feed = next(p for kind, p, _ in shop.w.queue.jobs if kind == UPDATE_FEED)
    assert feed["user_id"] == str(buyer.id) and feed["product_ids"] == sorted([str(a), str(b)])
    notices = {p["seller_id"] for kind, p, _ in shop.w.queue.jobs if kind == SEND_SALE_NOTICE}
    assert notices == {str(seller_a.id), str(seller_b.id)}
    assert all(row["dispatched_at"] is not None for row in shop.store["outbox"].values())


async def test_checkout_with_the_queue_down_keeps_order_and_outbox(shop: Shop) -> None:
    seller, buyer = shop.user("seller"), shop.user("buyer")
    await shop.add(buyer, shop.product(seller))
    shop.w.queue.down = True
    order = await shop.checkout(buyer)
    assert order.id in shop.store["orders"]
    outbox = shop.store["outbox"].values()
    assert len(outbox) == 3 and all(row["dispatched_at"] is None for row in outbox)  # mails and the feed update


async def test_empty_cart_is_422(shop: Shop) -> None:
    with pytest.raises(RuleViolation):
        await shop.checkout(shop.user("buyer"))


async def test_out_of_stock_rolls_everything_back_and_keeps_the_cart(shop: Shop) -> None:
    seller, buyer = shop.user("seller"), shop.user("buyer")
    plenty = shop.product(seller, stock=10, name="Plenty")
    scarce = shop.product(seller, stock=2, name="Scarce")
    await shop.add(buyer, plenty, 4)
    await shop.add(buyer, scarce, 2)
    shop.stored_product(scarce).stock = 1  # someone else bought one meanwhile
    with pytest.raises(Conflict) as refused:
        await shop.checkout(buyer)
    assert "Scarce" in refused.value.detail
    assert shop.stored_product(plenty).stock == 10 and shop.stored_product(scarce).stock == 1
    assert len((await shop.cart(buyer)).items) == 2
    assert not shop.store.get("orders") and not shop.store.get("outbox")


async def test_withdrawn_lines_are_never_sold(shop: Shop) -> None:
    seller, buyer = shop.user("seller"), shop.user("buyer")
    live, gone = shop.product(seller, name="Live"), shop.product(seller, name="Gone")
    await shop.add(buyer, gone)
    shop.stored_product(gone).withdrawn_at = NOW
    with pytest.raises(RuleViolation):  # only a withdrawn line: the cart is empty for the buyer
        await shop.checkout(buyer)
    await shop.add(buyer, live)
    order = await shop.checkout(buyer)
    assert [item.name for item in order.items] == ["Live"]
    assert shop.stored_product(gone).stock == 10


async def test_idempotency_key_returns_the_first_order(shop: Shop) -> None:
    seller, buyer = shop.user("seller"), shop.user("buyer")
    pid = shop.product(seller, stock=10)
    await shop.add(buyer, pid, 2)
    first = await shop.checkout(buyer, "key-1")
    retry = await shop.checkout(buyer, "key-1")  # the cart is empty now; the key still answers
    assert retry == first
    assert shop.stored_product(pid).stock == 8 and len(shop.store["orders"]) == 1
    await shop.add(buyer, pid, 1)
    second = await shop.checkout(buyer, "key-2")
    assert second.id != first.id and shop.stored_product(pid).stock == 7
    # Keys belong to a buyer: someone else's identical key is a different checkout.
    other = shop.user("other")
    await shop.add(other, pid, 1)
    assert (await shop.checkout(other, "key-1")).id != first.id


async def test_a_retry_returns_the_first_order_whatever_the_cart_holds_now(shop: Shop) -> None:
    seller, buyer = shop.user("seller"), shop.user("buyer")
    pid, scarce = shop.product(seller, stock=500), shop.product(seller, stock=1, name="Scarce")
    await shop.add(buyer, pid, 2)
    first = await shop.checkout(buyer, "key-1")
    await shop.add(buyer, pid, 1)
    await shop.add(buyer, scarce, 1)
    shop.stored_product(scarce).stock = 0  # this cart could not be ordered now
    assert await shop.checkout(buyer, "key-1") == first
    shop.stored_product(scarce).stock = 1
    await shop.add(buyer, pid, 98)
    shop.stored_product(pid).price = Decimal("200000000.00")  # 99 of these: over what one order may total
    assert await shop.checkout(buyer, "key-1") == first
    with pytest.raises(RuleViolation):  # a new key gets the rule
        await shop.checkout(buyer, "key-2")
    assert len(shop.store["orders"]) == 1 and len((await shop.cart(buyer)).items) == 2
    assert shop.stored_product(pid).stock == 498 and shop.stored_product(scarce).stock == 1


@pytest.mark.parametrize("key", ["", " ", "x" * 201, "tab\there", "é", "line\n"])
async def test_malformed_idempotency_keys_are_400(shop: Shop, key: str) -> None:
    with pytest.raises(InvalidInput):
        await shop.checkout(shop.user("buyer"), key)


async def test_cancel_returns_stock_once(shop: Shop) -> None:
    seller, buyer, other = shop.user("seller"), shop.user("buyer"), shop.user("other")
    pid = shop.product(seller, stock=5)
    await shop.add(buyer, pid, 3)
    order = await shop.checkout(buyer)
    cancel = orders.CancelOrder(shop.w.uow, shop.w.clock)
    with pytest.raises(NotFound):
        await cancel.execute(other, order_id=order.id)
    cancelled = await cancel.execute(buyer, order_id=order.id)
    assert cancelled.status == "cancelled" and cancelled.total == order.total
    assert shop.stored_product(pid).stock == 5
    with pytest.raises(Conflict):
        await cancel.execute(buyer, order_id=order.id)
    assert shop.stored_product(pid).stock == 5


async def test_orders_and_sales_pages_walk_everything_once(shop: Shop) -> None:
    seller, buyer, other = shop.user("seller"), shop.user("buyer"), shop.user("other")
    pid = shop.product(seller, stock=100)
    placed = []
    for _ in range(5):
        await shop.add(buyer, pid)
        placed.append((await shop.checkout(buyer)).id)
        shop.w.clock.advance(seconds=1)
    await shop.add(other, pid)
    await shop.checkout(other)
    await orders.CancelOrder(shop.w.uow, shop.w.clock).execute(buyer, order_id=placed[0])

    seen, cursor = [], None
    while True:
        page = await orders.ListOrders(shop.w.uow).execute(buyer, limit=2, cursor=cursor)
        seen += [order.id for order in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == placed[::-1]

    sales, cursor = [], None
    while True:
        sale_page = await orders.ListSales(shop.w.uow).execute(seller, limit=4, cursor=cursor)
        sales += sale_page.items
        if sale_page.next_cursor is None:
            break
        cursor = sale_page.next_cursor
    assert len(sales) == 6 and sales[-1].order_id == placed[0] and sales[-1].status == "cancelled"
    assert (await orders.ListSales(shop.w.uow).execute(buyer)).items == []


@pytest.mark.parametrize("cursor", ["", "garbage", "!!!!", "bm90LWEtY3Vyc29y", "x" * 300])
async def test_garbage_cursor_is_400(shop: Shop, cursor: str) -> None:
    with pytest.raises(InvalidInput):
        await orders.ListOrders(shop.w.uow).execute(shop.user("u"), cursor=cursor)


@pytest.mark.parametrize("limit", [0, 101])
async def test_limit_out_of_range_is_400(shop: Shop, limit: int) -> None:
    with pytest.raises(InvalidInput):
        await orders.ListSales(shop.w.uow).execute(shop.user("u"), limit=limit)


def test_an_orders_stock_moves_are_its_quantities_summed_per_product() -> None:
    """Checkout takes and cancel gives back the same amounts: one entry per product, all of it."""
    from hypothesis import given
    from hypothesis import strategies as st

    from domain.orders import OrderLine, quantities_by_product

    products = [new_id() for _ in range(4)]

    @given(st.lists(st.tuples(st.sampled_from(products), st.integers(1, 99)), max_size=12))
    def check(picks: list[tuple[uuid.UUID, int]]) -> None:
        lines = [OrderLine(new_id(), new_id(), p, None, "thing", Decimal("1.00"), q) for p, q in picks]
        moves = quantities_by_product(lines)
        assert set(moves) == {p for p, _ in picks}
        assert all(moves[p] == sum(q for pp, q in picks if pp == p) for p in moves)

    check()
