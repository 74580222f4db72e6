"""One contract for the cart, guest cart, order and inventory repositories, on memory, SQLite and
Postgres.

The cart tests run for both kinds of cart owner (a user, a guest cart): one repository, one set
of rules. The racing tests run real concurrent units of work: on Postgres they overlap, on
SQLite and in memory they take turns; the outcome must be the same everywhere.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from adapters.memory.uow import MemoryUnitOfWorkFactory
from domain.catalog import Product
from domain.ids import new_id
from domain.orders import CartLine, CartOwner, GuestCart, Order, OrderLine, OrderStatus, order_total
from domain.users import Role, User

NOW = datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)


def cart_reads_of(any_uow: Any) -> Any:
    """The ``CartReads`` adapter beside the unit of work's (reads outside any transaction)."""
    from adapters.memory.orders import MemoryCartReads
    from adapters.sql.cart_reads import SqlCartReads

    return MemoryCartReads(any_uow.store) if hasattr(any_uow, "store") else SqlCartReads(any_uow.db.reads)


async def add_user(any_uow, name: str) -> uuid.UUID:
    user = User(
        id=new_id(),
        username=name,
        email=f"{name}@example.com",
        password_hash="!",
        role=Role.USER,
        created_at=NOW,
        updated_at=NOW,
    )
    async with any_uow() as uow:
        await uow.users.add(user)
        await uow.commit()
    return user.id


@pytest.fixture(params=["user", "guest"])
def owner_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def add_guest_cart(any_uow, token_hash: str | None = None, *, last_used_at: datetime = NOW) -> GuestCart:
    cart = GuestCart(id=new_id(), token_hash=token_hash or new_id().hex * 2, created_at=NOW, last_used_at=last_used_at)
    async with any_uow() as uow:
        await uow.guest_carts.add(cart)
        await uow.commit()
    return cart


async def add_owner(any_uow, kind: str, name: str) -> CartOwner:
    """A cart owner of the kind under test: a user, or a guest cart."""
    if kind == "user":
        return CartOwner.of_user(await add_user(any_uow, name))
    return CartOwner.of_guest((await add_guest_cart(any_uow)).id)


async def add_product(any_uow, seller_id: uuid.UUID, *, price: str = "10.00", stock: int = 10, name: str = "Thing"):
    """A real product row (or the memory twin's entity), written the way the catalog stores it."""
    product = Product(
        id=new_id(),
        seller_id=seller_id,
        category_id=new_id(),
        name=name,
        description="",
        price=Decimal(price),
        image_url="https://example.com/p.png",
        stock=stock,
        created_at=NOW,
        updated_at=NOW,
    )
    if isinstance(any_uow, MemoryUnitOfWorkFactory):
        any_uow.store.table("products")[product.id] = product
        return product.id
    from sqlalchemy import insert

    from adapters.sql.tables import CategoryRow, ProductRow, table_of

    async with any_uow() as uow:
        await uow.executor.run(
            insert(table_of(CategoryRow)).values(
                id=product.category_id,
                name="Things",
                slug=f"things-{product.category_id.hex}",
                created_at=NOW,
                updated_at=NOW,
            )
        )
        await uow.executor.run(
            insert(table_of(ProductRow)).values(
                id=product.id,
                seller_id=seller_id,
                category_id=product.category_id,
                name=name,
                description="",
                price=product.price,
                image_url=product.image_url,
                stock=stock,
                rating_sum=0,
                review_count=0,
                rating_avg=Decimal("0"),
                favorite_count=0,
                created_at=NOW,
                updated_at=NOW,
            )
        )
        await uow.commit()
    return product.id


async def withdraw(any_uow, product_id: uuid.UUID) -> None:
    if isinstance(any_uow, MemoryUnitOfWorkFactory):
        any_uow.store.table("products")[product_id].withdrawn_at = NOW
        return
    from sqlalchemy import update

    from adapters.sql.tables import ProductRow, table_of

    products = table_of(ProductRow)
    async with any_uow() as uow:
        await uow.executor.run(update(products).where(products.c.id == product_id).values(withdrawn_at=NOW))
        await uow.commit()


async def stock_of(any_uow, product_id: uuid.UUID) -> int:
    """Stock as stored, withdrawn or not."""
    if isinstance(any_uow, MemoryUnitOfWorkFactory):
        return int(any_uow.store.table("products")[product_id].stock)
    from sqlalchemy import select

    from adapters.sql.tables import ProductRow, table_of

    products = table_of(ProductRow)
    async with any_uow() as uow:
        return int(await uow.executor.value(select(products.c.stock).where(products.c.id == product_id)))


def cart_line(owner: CartOwner | uuid.UUID, product_id: uuid.UUID, quantity: int, price: str = "10.00", at=NOW):
    return CartLine(
        id=new_id(),
        owner=owner if isinstance(owner, CartOwner) else CartOwner.of_user(owner),
        product_id=product_id,
        quantity=quantity,
        price_at_add=Decimal(price),
        created_at=at,
        updated_at=at,
    )


def make_order(buyer_id: uuid.UUID, items: list[tuple[uuid.UUID, uuid.UUID, str, int]], *, at=NOW, key=None) -> Order:
    order_id = new_id()
    lines = [
        OrderLine(
            id=new_id(),
            order_id=order_id,
            product_id=product_id,
            seller_id=seller_id,
            name="Thing",
            unit_price=Decimal(price),
            quantity=quantity,
        )
        for product_id, seller_id, price, quantity in items
    ]
    return Order(
        id=order_id,
        buyer_id=buyer_id,
        status=OrderStatus.PLACED,
        total=order_total(lines),
        created_at=at,
        updated_at=at,
        lines=lines,
        idempotency_key=key,
    )


async def test_cart_upsert_adds_quantities_into_one_line(any_uow, owner_kind) -> None:
    seller, buyer = await add_user(any_uow, "seller"), await add_owner(any_uow, owner_kind, "buyer")
    product = await add_product(any_uow, seller, stock=500)
    first = cart_line(buyer, product, 2, "10.00")
    async with any_uow() as uow:
        stored, created = await uow.cart.add(first)
        await uow.commit()
    assert created and stored.id == first.id and stored.quantity == 2
    async with any_uow() as uow:
        stored, created = await uow.cart.add(cart_line(buyer, product, 3, "12.50"))
        await uow.commit()
    assert not created and stored.id == first.id and stored.quantity == 5
    assert stored.price_at_add == Decimal("12.50")
    async with any_uow() as uow:
        assert await uow.cart.add(cart_line(buyer, product, 95)) is None  # 100 > 99: refused, unchanged
        await uow.commit()
    async with any_uow() as uow:
        [entry] = await uow.cart.entries(buyer)
    assert entry.id == first.id and entry.quantity == 5


async def test_cart_entries_join_live_products_and_sellers(any_uow, owner_kind) -> None:
    seller, buyer, other = (
        await add_user(any_uow, "seller"),
        await add_owner(any_uow, owner_kind, "buyer"),
        await add_owner(any_uow, owner_kind, "o"),
    )
    a = await add_product(any_uow, seller, price="0.10", name="A")
    b = await add_product(any_uow, seller, price="0.20", name="B")
    gone = await add_product(any_uow, seller, name="Gone")
    async with any_uow() as uow:
        line_a = (await uow.cart.add(cart_line(buyer, a, 1, "0.10", at=NOW)))[0]
        await uow.cart.add(cart_line(buyer, b, 2, "0.25", at=NOW + timedelta(seconds=1)))
        await uow.cart.add(cart_line(buyer, gone, 1, at=NOW + timedelta(seconds=2)))
        await uow.cart.add(cart_line(other, a, 1, "0.10"))
        await uow.commit()
    await withdraw(any_uow, gone)
    async with any_uow() as uow:
        entries = await uow.cart.entries(buyer)
        only_a = await uow.cart.entries(buyer, line_id=line_a.id)
        none_for_other = await uow.cart.entries(other, line_id=line_a.id)
        taken = await uow.cart.take_for_checkout(buyer)  # not committed: the lines come back
    assert [(e.product.name, e.quantity, e.price_at_add, e.product.price) for e in entries] == [
        ("A", 1, Decimal("0.10"), Decimal("0.10")),
        ("B", 2, Decimal("0.25"), Decimal("0.20")),
    ]
    assert entries[0].product.seller.username == "seller" and entries[0].product.seller.id == seller
    assert entries[0].product.image_url == "https://example.com/p.png" and entries[0].product.stock == 10
    assert [e.id for e in only_a] == [line_a.id] and none_for_other == []
    assert taken == entries
    assert await cart_reads_of(any_uow).entries(buyer) == entries  # GET /api/cart's read agrees
    async with any_uow() as uow:
        assert await uow.cart.take_for_checkout(buyer) == entries
        assert await uow.cart.take_for_checkout(buyer) == []  # taken once
        await uow.commit()
    async with any_uow() as uow:  # the withdrawn product's line stays; the other cart is untouched
        assert await uow.cart.entries(buyer) == []
        assert [e.product.id for e in await uow.cart.entries(other)] == [a]
        added = await uow.cart.add(cart_line(buyer, gone, 1))
        assert added is not None and not added[1]  # the line of the withdrawn product was still there


async def test_cart_changes_only_touch_ones_own_lines(any_uow, owner_kind) -> None:
    seller = await add_user(any_uow, "s")
    buyer, other = await add_owner(any_uow, owner_kind, "b"), await add_owner(any_uow, owner_kind, "o")
    a, b = await add_product(any_uow, seller), await add_product(any_uow, seller)
    async with any_uow() as uow:
        line_a = (await uow.cart.add(cart_line(buyer, a, 1)))[0]
        line_b = (await uow.cart.add(cart_line(buyer, b, 1)))[0]
        line_o = (await uow.cart.add(cart_line(other, a, 1)))[0]
        await uow.commit()
    async with any_uow() as uow:
        assert not await uow.cart.set_quantity(line_a.id, other, 7, NOW)
        assert not await uow.cart.remove(line_a.id, other)
        assert await uow.cart.set_quantity(line_a.id, buyer, 7, NOW)
        await uow.commit()
    async with any_uow() as uow:
        assert [e.quantity for e in await uow.cart.entries(buyer)] == [7, 1]
        assert await uow.cart.remove(line_b.id, buyer)
        assert not await uow.cart.remove(line_b.id, buyer)
        await uow.commit()
    async with any_uow() as uow:
        assert [e.id for e in await uow.cart.take_for_checkout(buyer)] == [line_a.id]
        await uow.commit()
    async with any_uow() as uow:
        assert await uow.cart.entries(buyer) == []
        assert [e.id for e in await uow.cart.entries(other)] == [line_o.id]
        await uow.cart.clear(other)
        await uow.commit()
    async with any_uow() as uow:
        assert await uow.cart.entries(other) == []


async def test_inventory_takes_stock_only_when_enough_and_live(any_uow) -> None:
    seller = await add_user(any_uow, "seller")
    product = await add_product(any_uow, seller, stock=3, price="4.99")
    async with any_uow() as uow:
        found = await uow.inventory.purchasable(product)
        assert found is not None and (found.stock, found.price, found.seller_id) == (3, Decimal("4.99"), seller)
        assert await uow.inventory.purchasable(new_id()) is None
        assert await uow.inventory.take_all({product: 4}, NOW) == product
        assert await uow.inventory.take_all({product: 3}, NOW) is None
        assert await uow.inventory.take_all({product: 1}, NOW) == product
        assert await uow.inventory.take_all({}, NOW) is None
        await uow.commit()
    assert await stock_of(any_uow, product) == 0
    async with any_uow() as uow:
        await uow.inventory.put_back_all({product: 2}, NOW)
        await uow.commit()
    await withdraw(any_uow, product)
    async with any_uow() as uow:
        assert await uow.inventory.purchasable(product) is None
        assert await uow.inventory.take_all({product: 1}, NOW) == product
    assert await stock_of(any_uow, product) == 2


async def test_take_all_takes_every_line_at_once(any_uow) -> None:
    seller = await add_user(any_uow, "seller")
    a, b, c = [await add_product(any_uow, seller, stock=stock) for stock in (5, 2, 9)]
    async with any_uow() as uow:
        assert await uow.inventory.take_all({c: 9, a: 1, b: 2}, NOW) is None
        await uow.commit()
    assert [await stock_of(any_uow, p) for p in (a, b, c)] == [4, 0, 0]


async def test_take_all_with_one_short_line_takes_nothing_and_names_it(any_uow) -> None:
    seller = await add_user(any_uow, "seller")
    a, b, c = [await add_product(any_uow, seller, stock=stock) for stock in (5, 2, 9)]
    async with any_uow() as uow:
        assert await uow.inventory.take_all({a: 5, b: 3, c: 9}, NOW) == b
        await uow.commit()  # even committed: nothing was taken
    assert [await stock_of(any_uow, p) for p in (a, b, c)] == [5, 2, 9]
    first, second = sorted((a, c))
    async with any_uow() as uow:
        # Several short: the first in product-id order is named, whatever the order given.
        assert await uow.inventory.take_all({second: 10, b: 1, first: 6}, NOW) == first
        await uow.commit()
    assert [await stock_of(any_uow, p) for p in (a, b, c)] == [5, 2, 9]


async def test_take_all_counts_withdrawn_and_missing_products_as_short(any_uow) -> None:
    seller = await add_user(any_uow, "seller")
    live, gone = await add_product(any_uow, seller, stock=5), await add_product(any_uow, seller, stock=5)
    await withdraw(any_uow, gone)
    missing = new_id()
    async with any_uow() as uow:
        assert await uow.inventory.take_all({live: 1, gone: 1}, NOW) == gone
        assert await uow.inventory.take_all({live: 1, missing: 1}, NOW) == missing
        await uow.commit()
    assert await stock_of(any_uow, live) == 5 and await stock_of(any_uow, gone) == 5


async def test_uncommitted_stock_and_cart_changes_roll_back(any_uow) -> None:
    seller, buyer = await add_user(any_uow, "seller"), await add_user(any_uow, "buyer")
    mine = CartOwner.of_user(buyer)
    product = await add_product(any_uow, seller, stock=5)
    async with any_uow() as uow:
        await uow.cart.add(cart_line(buyer, product, 1))
        await uow.commit()
    async with any_uow() as uow:
        assert await uow.inventory.take_all({product: 5}, NOW) is None
        await uow.cart.clear(mine)
        assert await uow.orders.add(make_order(buyer, [(product, seller, "10.00", 5)]))
    assert await stock_of(any_uow, product) == 5
    async with any_uow() as uow:
        assert len(await uow.cart.entries(mine)) == 1
        assert await uow.orders.list_for_buyer(buyer, limit=10, after=None) == []


async def test_orders_round_trip_exactly_and_stay_private(any_uow) -> None:
    seller, buyer, other = await add_user(any_uow, "s"), await add_user(any_uow, "b"), await add_user(any_uow, "o")
    a, b = await add_product(any_uow, seller), await add_product(any_uow, seller)
    order = make_order(buyer, [(a, seller, "0.10", 3), (b, seller, "0.20", 1)], key="key-1")
    async with any_uow() as uow:
        assert await uow.orders.add(order)
        await uow.commit()
    async with any_uow() as uow:
        stored = await uow.orders.get(order.id, buyer)
        by_key = await uow.orders.get_by_idempotency_key(buyer, "key-1")
        assert await uow.orders.get(order.id, other) is None
        assert await uow.orders.get_by_idempotency_key(other, "key-1") is None
    assert stored == order and by_key == order
    assert stored.total == Decimal("0.50") and [line.line_total for line in stored.lines] == [
        Decimal("0.30"),
        Decimal("0.20"),
    ]


async def test_idempotency_key_is_unique_per_buyer_and_writes_nothing_twice(any_uow) -> None:
    seller, buyer, other = await add_user(any_uow, "s"), await add_user(any_uow, "b"), await add_user(any_uow, "o")
    product = await add_product(any_uow, seller)
    first = make_order(buyer, [(product, seller, "1.00", 1)], key="same")
    async with any_uow() as uow:
        assert await uow.orders.add(first)
        assert await uow.orders.add(make_order(buyer, [(product, seller, "1.00", 1)]))  # no key: never collides
        assert await uow.orders.add(make_order(buyer, [(product, seller, "1.00", 1)]))
        assert await uow.orders.add(make_order(other, [(product, seller, "1.00", 1)], key="same"))
        await uow.commit()
    async with any_uow() as uow:
        assert not await uow.orders.add(make_order(buyer, [(product, seller, "9.00", 9)], key="same"))
        await uow.commit()
    async with any_uow() as uow:
        mine = await uow.orders.list_for_buyer(buyer, limit=10, after=None)
        sales = await uow.orders.sales(seller, limit=10, after=None)
    assert len(mine) == 3 and len(sales) == 4
    [kept] = [order for order in mine if order.idempotency_key == "same"]
    assert kept.id == first.id and kept.lines == first.lines


async def test_status_changes_are_guarded(any_uow) -> None:
    seller, buyer = await add_user(any_uow, "s"), await add_user(any_uow, "b")
    product = await add_product(any_uow, seller)
    order = make_order(buyer, [(product, seller, "1.00", 1)])
    async with any_uow() as uow:
        await uow.orders.add(order)
        await uow.commit()
    later = NOW + timedelta(minutes=5)
    async with any_uow() as uow:
        changed = await uow.orders.change_status(
            order.id, expected=OrderStatus.PLACED, new=OrderStatus.CANCELLED, now=later
        )
        assert changed
        again = await uow.orders.change_status(
            order.id, expected=OrderStatus.PLACED, new=OrderStatus.CANCELLED, now=later
        )
        assert not again
        await uow.commit()
    async with any_uow() as uow:
        stored = await uow.orders.get(order.id, buyer)
        [sale] = await uow.orders.sales(seller, limit=5, after=None)
    assert stored.status is OrderStatus.CANCELLED and stored.updated_at == later and stored.created_at == NOW
    assert sale.sale.status == "cancelled" and sale.sale.order_id == order.id


async def test_history_and_sales_are_keyset_pages_newest_first(any_uow) -> None:
    seller, other_seller, buyer = (
        await add_user(any_uow, "s"),
        await add_user(any_uow, "s2"),
        await add_user(any_uow, "b"),
    )
    mine, theirs = await add_product(any_uow, seller), await add_product(any_uow, other_seller)
    placed = []
    async with any_uow() as uow:
        for i in range(5):
            # Two orders share a timestamp, so the id breaks the tie.
            at = NOW + timedelta(seconds=min(i, 3))
            order = make_order(buyer, [(mine, seller, "1.00", i + 1), (theirs, other_seller, "2.00", 1)], at=at)
            await uow.orders.add(order)
            placed.append(order)
        await uow.commit()
    newest_first = sorted(placed, key=lambda o: (o.created_at, o.id), reverse=True)
    seen, after = [], None
    async with any_uow() as uow:
        while True:
            page = await uow.orders.list_for_buyer(buyer, limit=2, after=after)
            seen += page
            if len(page) < 2:
                break
            after = (page[-1].created_at, page[-1].id)
        sales, after = [], None
        while True:
            sale_page = await uow.orders.sales(seller, limit=2, after=after)
            sales += sale_page
            if len(sale_page) < 2:
                break
            after = (sale_page[-1].sale.created_at, sale_page[-1].line_id)
    assert [o.id for o in seen] == [o.id for o in newest_first]
    assert [s.sale.order_id for s in sales] == [o.id for o in newest_first]
    assert [s.sale.quantity for s in sales] == [o.lines[0].quantity for o in newest_first]
    assert all(s.sale.product_id == mine and s.sale.line_total == Decimal(s.sale.quantity) for s in sales)


async def test_racing_adds_make_one_line_with_the_sum(any_uow, owner_kind) -> None:
    seller, buyer = await add_user(any_uow, "seller"), await add_owner(any_uow, owner_kind, "buyer")
    product = await add_product(any_uow, seller, stock=100)

    async def add_one(quantity: int) -> bool:
        async with any_uow() as uow:
            _, created = await uow.cart.add(cart_line(buyer, product, quantity))
            await uow.commit()
        return created

    created = await asyncio.gather(*(add_one(q) for q in (1, 2, 3, 4, 5, 6, 7, 8)))
    assert sorted(created) == [False] * 7 + [True]
    async with any_uow() as uow:
        [entry] = await uow.cart.entries(buyer)
    assert entry.quantity == 36


async def test_racing_takes_never_oversell(any_uow) -> None:
    seller = await add_user(any_uow, "seller")
    product = await add_product(any_uow, seller, stock=3)

    async def take() -> bool:
        async with any_uow() as uow:
            taken = await uow.inventory.take_all({product: 1}, NOW) is None
            await asyncio.sleep(0)  # hold the row a moment so Postgres transactions overlap
            await uow.commit()
        return taken

    results = await asyncio.gather(*(take() for _ in range(8)))
    assert sum(results) == 3
    assert await stock_of(any_uow, product) == 0


async def test_racing_take_alls_over_the_same_products_neither_deadlock_nor_oversell(any_uow) -> None:
    seller, buyer = await add_user(any_uow, "seller"), await add_user(any_uow, "buyer")
    products = [await add_product(any_uow, seller, stock=4) for _ in range(3)]

    async def take(i: int) -> bool:
        # Every caller lists the products in another order (the cart's order is arbitrary).
        order = products[i % 3 :] + products[: i % 3]
        order = order if i % 2 else order[::-1]
        async with any_uow() as uow:
            # As checkout does: the order lines first (their foreign key share-locks the products).
            assert await uow.orders.add(make_order(buyer, [(p, seller, "1.00", 1) for p in order]))
            taken = await uow.inventory.take_all(dict.fromkeys(order, 1), NOW) is None
            await asyncio.sleep(0.01)  # hold the locks so Postgres transactions overlap
            await uow.commit()
        return taken

    results = await asyncio.gather(*(take(i) for i in range(10)))
    assert sum(results) == 4
    assert [await stock_of(any_uow, p) for p in products] == [0, 0, 0]


async def test_racing_orders_with_one_key_make_one_order(any_uow) -> None:
    seller, buyer = await add_user(any_uow, "seller"), await add_user(any_uow, "buyer")
    product = await add_product(any_uow, seller)

    async def place() -> bool:
        async with any_uow() as uow:
            added = await uow.orders.add(make_order(buyer, [(product, seller, "1.00", 1)], key="retry"))
            await asyncio.sleep(0)
            await uow.commit()
        return added

    assert sorted(await asyncio.gather(*(place() for _ in range(4)))) == [False, False, False, True]
    async with any_uow() as uow:
        assert len(await uow.orders.list_for_buyer(buyer, limit=10, after=None)) == 1


@pytest.mark.parametrize("price", ["0.01", "999999.99"])
async def test_money_is_exact_at_the_edges(any_uow, price: str) -> None:
    seller, buyer = await add_user(any_uow, "seller"), await add_user(any_uow, "buyer")
    product = await add_product(any_uow, seller, price=price)
    order = make_order(buyer, [(product, seller, price, 99)])
    async with any_uow() as uow:
        await uow.cart.add(cart_line(buyer, product, 99, price))
        await uow.orders.add(order)
        await uow.commit()
    async with any_uow() as uow:
        [entry] = await uow.cart.entries(CartOwner.of_user(buyer))
        stored = await uow.orders.get(order.id, buyer)
    assert entry.price_at_add == entry.product.price == Decimal(price)
    assert stored.total == Decimal(price) * 99 and str(stored.total) == str(Decimal(price) * 99)


async def test_user_and_guest_lines_of_one_product_stay_apart(any_uow) -> None:
    seller, user = await add_user(any_uow, "seller"), CartOwner.of_user(await add_user(any_uow, "buyer"))
    guest = CartOwner.of_guest((await add_guest_cart(any_uow)).id)
    product = await add_product(any_uow, seller, stock=50)
    async with any_uow() as uow:
        mine, created_mine = await uow.cart.add(cart_line(user, product, 2))
        theirs, created_theirs = await uow.cart.add(cart_line(guest, product, 3))
        await uow.commit()
    assert created_mine and created_theirs and mine.id != theirs.id
    async with any_uow() as uow:
        # A line id of another cart is not found, whichever kind of owner asks.
        assert not await uow.cart.set_quantity(mine.id, guest, 9, NOW)
        assert not await uow.cart.remove(theirs.id, user)
        assert await uow.cart.entries(guest, line_id=mine.id) == []
        await uow.cart.clear(guest)
        await uow.commit()
    async with any_uow() as uow:
        assert [(e.id, e.quantity) for e in await uow.cart.entries(user)] == [(mine.id, 2)]
        assert await uow.cart.entries(guest) == []


async def test_add_capped_clamps_to_the_cap_and_never_lowers_a_line(any_uow) -> None:
    seller, buyer = await add_user(any_uow, "seller"), CartOwner.of_user(await add_user(any_uow, "buyer"))
    a, b, c = [await add_product(any_uow, seller, stock=10, name=n) for n in "ABC"]
    async with any_uow() as uow:
        await uow.cart.add(cart_line(buyer, a, 5, "10.00"))
        await uow.cart.add(cart_line(buyer, b, 7, "10.00", at=NOW + timedelta(seconds=1)))
        await uow.commit()
    later = NOW + timedelta(seconds=5)
    async with any_uow() as uow:
        await uow.cart.add_capped(
            [
                (cart_line(buyer, a, 8, "9.00", at=later), 10),  # 5 + 8 -> capped at 10
                (cart_line(buyer, b, 1, "9.00", at=later), 5),  # 7 is already above 5: stays 7
                (cart_line(buyer, c, 3, "9.00", at=later), 5),  # new line
            ]
        )
        await uow.cart.add_capped([])
        await uow.commit()
    async with any_uow() as uow:
        entries = await uow.cart.entries(buyer)
    assert [(e.product.name, e.quantity, e.price_at_add) for e in entries] == [
        ("A", 10, Decimal("9.00")),
        ("B", 7, Decimal("9.00")),
        ("C", 3, Decimal("9.00")),
    ]
    async with any_uow() as uow:
        await uow.cart.add_capped([(cart_line(buyer, c, 2, "9.00"), 99)])  # an exact sum under the cap
        await uow.commit()
    async with any_uow() as uow:
        assert [e.quantity for e in await uow.cart.entries(buyer)] == [10, 7, 5]


async def test_guest_carts_are_found_by_hash_touched_forward_and_spent_once(any_uow) -> None:
    cart = await add_guest_cart(any_uow, "a" * 64)
    async with any_uow() as uow:
        assert await uow.guest_carts.get_by_hash("a" * 64) == cart
        assert await uow.guest_carts.get_by_hash("b" * 64) is None
        await uow.guest_carts.touch(cart.id, NOW + timedelta(hours=2))
        await uow.guest_carts.touch(cart.id, NOW + timedelta(hours=1))  # never backwards
        await uow.commit()
    async with any_uow() as uow:
        assert (await uow.guest_carts.get_by_hash("a" * 64)).last_used_at == NOW + timedelta(hours=2)
    reads = cart_reads_of(any_uow)  # the token check's one-statement read agrees
    async with any_uow() as uow:
        assert await reads.guest_cart("a" * 64) == await uow.guest_carts.get_by_hash("a" * 64)
    assert await reads.guest_cart("b" * 64) is None
    spent_at = NOW + timedelta(hours=3)
    async with any_uow() as uow:
        assert await uow.guest_carts.spend("b" * 64, now=spent_at, used_after=NOW) is None
        # Last used at or before ``used_after``: expired, not spendable.
        assert await uow.guest_carts.spend("a" * 64, now=spent_at, used_after=NOW + timedelta(hours=2)) is None
        assert await uow.guest_carts.spend("a" * 64, now=spent_at, used_after=NOW) == cart.id
        assert await uow.guest_carts.spend("a" * 64, now=spent_at, used_after=NOW) is None
        await uow.guest_carts.touch(cart.id, spent_at + timedelta(hours=1))  # a spent cart is not touched
        await uow.commit()
    async with any_uow() as uow:
        stored = await uow.guest_carts.get_by_hash("a" * 64)
    assert stored.spent_at == spent_at and stored.last_used_at == NOW + timedelta(hours=2)


async def test_hold_refuses_a_spent_cart_and_a_merge_waits_for_a_holder(any_uow) -> None:
    cart = await add_guest_cart(any_uow, "d" * 64)
    order: list[str] = []

    async def hold_then_write() -> bool:
        async with any_uow() as uow:
            held = await uow.guest_carts.hold(cart.id)
            await asyncio.sleep(0.05)  # a merge starting now must wait for this transaction
            order.append("holder done")
            await uow.commit()
        return held

    async def spend() -> uuid.UUID | None:
        await asyncio.sleep(0.01)
        async with any_uow() as uow:
            won = await uow.guest_carts.spend("d" * 64, now=NOW, used_after=NOW - timedelta(1))
            order.append("spent")
            await uow.commit()
        return won

    held, won = await asyncio.gather(hold_then_write(), spend())
    assert held and won == cart.id and order == ["holder done", "spent"]
    async with any_uow() as uow:
        assert not await uow.guest_carts.hold(cart.id)
        assert not await uow.guest_carts.hold(new_id())


async def test_racing_spends_of_one_token_have_one_winner(any_uow) -> None:
    cart = await add_guest_cart(any_uow, "c" * 64)

    async def spend() -> uuid.UUID | None:
        async with any_uow() as uow:
            won = await uow.guest_carts.spend("c" * 64, now=NOW + timedelta(minutes=1), used_after=NOW - timedelta(1))
            await asyncio.sleep(0.01)  # hold the row so Postgres transactions overlap
            await uow.commit()
        return won

    results = await asyncio.gather(*(spend() for _ in range(6)))
    assert [r for r in results if r is not None] == [cart.id]


async def test_purge_deletes_stale_guest_carts_with_their_lines_in_batches(any_uow) -> None:
    seller = await add_user(any_uow, "seller")
    product = await add_product(any_uow, seller, stock=50)
    stale = [await add_guest_cart(any_uow, last_used_at=NOW - timedelta(days=31, minutes=i)) for i in range(3)]
    fresh = await add_guest_cart(any_uow, last_used_at=NOW - timedelta(days=29))
    user = CartOwner.of_user(await add_user(any_uow, "buyer"))
    async with any_uow() as uow:
        for cart in [*stale, fresh]:
            await uow.cart.add(cart_line(CartOwner.of_guest(cart.id), product, 1))
        await uow.cart.add(cart_line(user, product, 1))
        await uow.commit()
    cutoff = NOW - timedelta(days=30)
    async with any_uow() as uow:
        assert await uow.guest_carts.purge(unused_since=cutoff, limit=2) == 2
        await uow.commit()
    async with any_uow() as uow:
        assert await uow.guest_carts.purge(unused_since=cutoff, limit=2) == 1
        assert await uow.guest_carts.purge(unused_since=cutoff, limit=2) == 0
        await uow.commit()
    async with any_uow() as uow:
        for cart in stale:
            assert await uow.guest_carts.get_by_hash(cart.token_hash) is None
            assert await uow.cart.entries(CartOwner.of_guest(cart.id)) == []
        assert await uow.guest_carts.get_by_hash(fresh.token_hash) == fresh
        assert len(await uow.cart.entries(CartOwner.of_guest(fresh.id))) == 1
        assert len(await uow.cart.entries(user)) == 1
