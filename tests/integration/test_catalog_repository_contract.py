"""One contract for the catalog repositories and queries, run on memory, SQLite and Postgres."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from application.identity import Principal
from application.use_cases.catalog import reviews
from application.use_cases.catalog.deps import CatalogDeps
from application.views.catalog import CategoryRef, ProductDetail, ProductFilter, ProductSort, SellerRef
from domain.catalog import Category, Favorite, Product, Review, rating_average
from domain.errors import Conflict, RuleViolation
from domain.ids import new_id
from domain.orders import CartLine, CartOwner, Order, OrderLine, OrderStatus
from domain.users import Role, User
from tests.conftest import _truncate

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Env:
    """A persistence adapter under test, with a few raw helpers the ports do not offer."""

    kind: str
    uow: Any
    queries: Any
    db: Any = None

    async def counters(self, product_id: uuid.UUID) -> tuple[int, int, Decimal | None, int]:
        """rating_sum, review_count, the STORED rating_avg (None when no reviews) and favorite_count."""
        if self.kind == "memory":
            p = self.uow.store.table("products")[product_id]
            return p.rating_sum, p.review_count, p.rating_avg, p.favorite_count
        from sqlalchemy import select

        from adapters.sql.tables import ProductRow, table_of

        products = table_of(ProductRow)
        async with self.db.engine.connect() as conn:
            row = (await conn.execute(select(products).where(products.c.id == product_id))).one()
        return row.rating_sum, row.review_count, row.rating_avg if row.review_count else None, row.favorite_count

    async def recount(self, product_id: uuid.UUID) -> tuple[int, int]:
        if self.kind == "memory":
            ratings = [r.rating for r in self.uow.store.table("reviews").values() if r.product_id == product_id]
        else:
            from sqlalchemy import select

            from adapters.sql.tables import ReviewRow, table_of

            reviews = table_of(ReviewRow)
            async with self.db.engine.connect() as conn:
                ratings = list(
                    (await conn.execute(select(reviews.c.rating).where(reviews.c.product_id == product_id))).scalars()
                )
        return sum(ratings), len(ratings)

    async def add_order_line(self, buyer_id: uuid.UUID, product: Product) -> None:
        order = Order(
            id=new_id(),
            buyer_id=buyer_id,
            status=OrderStatus.PLACED,
            total=product.price,
            created_at=NOW,
            updated_at=NOW,
        )
        line = OrderLine(
            id=new_id(),
            order_id=order.id,
            product_id=product.id,
            seller_id=product.seller_id,
            name=product.name,
            unit_price=product.price,
            quantity=1,
        )
        order.lines.append(line)
        if self.kind == "memory":
            self.uow.store.table("orders")[order.id] = order
            return
        from sqlalchemy import insert

        from adapters.sql.tables import OrderLineRow, OrderRow, table_of

        async with self.db.engine.begin() as conn:
            await conn.execute(
                insert(table_of(OrderRow)).values(
                    id=order.id, buyer_id=buyer_id, status="placed", total=order.total, created_at=NOW, updated_at=NOW
                )
            )
            await conn.execute(
                insert(table_of(OrderLineRow)).values(
                    id=line.id,
                    order_id=order.id,
                    product_id=product.id,
                    seller_id=product.seller_id,
                    buyer_id=buyer_id,
                    name=product.name,
                    unit_price=product.price,
                    quantity=1,
                    line_total=product.price,
                    created_at=NOW,
                    updated_at=NOW,
                )
            )

    async def add_cart_line(self, user_id: uuid.UUID, product: Product) -> None:
        line = CartLine(
            id=new_id(),
            owner=CartOwner.of_user(user_id),
            product_id=product.id,
            quantity=1,
            price_at_add=product.price,
            created_at=NOW,
            updated_at=NOW,
        )
        if self.kind == "memory":
            self.uow.store.table("cart_items")[line.id] = line
            return
        from sqlalchemy import insert

        from adapters.sql.tables import CartItemRow, table_of

        async with self.db.engine.begin() as conn:
            await conn.execute(
                insert(table_of(CartItemRow)).values(
                    id=line.id,
                    user_id=user_id,
                    product_id=product.id,
                    quantity=1,
                    price_at_add=product.price,
                    created_at=NOW,
                    updated_at=NOW,
                )
            )

    async def cart_lines(self) -> set[tuple[uuid.UUID, uuid.UUID]]:
        if self.kind == "memory":
            return {(c.owner.user_id, c.product_id) for c in self.uow.store.table("cart_items").values()}
        from sqlalchemy import select

        from adapters.sql.tables import CartItemRow, table_of

        items = table_of(CartItemRow)
        async with self.db.engine.connect() as conn:
            return {(r.user_id, r.product_id) for r in await conn.execute(select(items.c.user_id, items.c.product_id))}


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def env(request: pytest.FixtureRequest) -> Any:
    if request.param == "memory":
        from adapters.memory.catalog import MemoryCatalogQueries
        from adapters.memory.uow import MemoryUnitOfWorkFactory

        factory = MemoryUnitOfWorkFactory()
        yield Env("memory", factory, MemoryCatalogQueries(factory.store))
        return
    from adapters.sql.catalog_queries import SqlCatalogQueries
    from adapters.sql.database import open_database
    from adapters.sql.uow import SqlUnitOfWorkFactory

    if request.param.startswith("postgres"):
        url = request.getfixturevalue("pg_url")
        await _truncate(url)
    else:
        url = request.getfixturevalue("sqlite_url")
    db = open_database(url, pool_size=4)
    queries = SqlCatalogQueries(db.reads, db.dialect)
    kind = request.param
    yield Env(kind, SqlUnitOfWorkFactory(db), queries, db)
    await db.dispose()


def make_user(name: str) -> User:
    return User(
        id=new_id(),
        username=name,
        email=f"{name}@example.com",
        password_hash="h",
        role=Role.USER,
        created_at=NOW,
        updated_at=NOW,
    )


def make_category(name: str, slug: str, parent: uuid.UUID | None = None) -> Category:
    return Category(id=new_id(), name=name, slug=slug, parent_id=parent, created_at=NOW, updated_at=NOW)


def make_product(
    seller: User,
    category: Category,
    name: str = "Thing",
    price: str = "10.00",
    *,
    description: str = "",
    stock: int = 1,
    at: datetime = NOW,
) -> Product:
    return Product(
        id=new_id(),
        seller_id=seller.id,
        category_id=category.id,
        name=name,
        description=description,
        price=Decimal(price),
        image_url=None,
        stock=stock,
        created_at=at,
        updated_at=at,
    )


async def seed(
    env: Env, *users: User, categories: tuple[Category, ...] = (), products: tuple[Product, ...] = ()
) -> None:
    async with env.uow() as uow:
        for user in users:
            await uow.users.add(user)
        for category in categories:
            await uow.categories.add(category)
        for product in products:
            await uow.products.add(product)
        await uow.commit()


async def test_categories_slugs_tree_and_use(env: Env) -> None:
    seller = make_user("seller")
    top = make_category("Electronics", "electronics")
    child = make_category("Phones", "phones", top.id)
    await seed(env, seller, categories=(top, child))
    async with env.uow() as uow:
        with pytest.raises(Conflict) as clash:
            await uow.categories.add(make_category("Phones", "phones"))
    assert clash.value.field == "slug"
    async with env.uow() as uow:
        await uow.categories.add(make_category("Phones 2", "phones-2"))
        await uow.categories.add(make_category("Phonesque", "phonesque"))
        assert await uow.categories.slugs_like("phones") == {"phones", "phones-2"}
        assert (await uow.categories.parent_links())[child.id] == top.id
        assert await uow.categories.in_use(top.id) and not await uow.categories.in_use(child.id)
        await uow.products.add(make_product(seller, child))
        assert await uow.categories.in_use(child.id)
        with pytest.raises(Conflict):
            await uow.categories.delete(child.id)
        await uow.commit()
    async with env.uow() as uow:
        stored = await uow.categories.get(child.id)
        stored.name, stored.slug, stored.parent_id = "Mobile", "mobile", None
        await uow.categories.update(stored)
        await uow.commit()
    async with env.uow() as uow:
        assert (await uow.categories.get(child.id)).slug == "mobile"
        assert await uow.categories.delete(top.id)
        await uow.commit()
    views = await env.queries.categories()
    assert [v.name for v in views] == ["Mobile", "Phones 2", "Phonesque"]
    assert next(v for v in views if v.name == "Mobile").product_count == 1


async def test_products_write_side(env: Env) -> None:
    seller, other = make_user("seller"), make_user("other")
    category, second = make_category("Books", "books"), make_category("Music", "music")
    await seed(env, seller, other, categories=(category, second))
    with pytest.raises(RuleViolation):
        async with env.uow() as uow:
            await uow.products.add(make_product(seller, make_category("Ghost", "ghost")))
    a, b = make_product(seller, category, "A", stock=5), make_product(seller, category, "B")
    c = make_product(other, category, "C")
    await seed(env, products=(a, b, c))
    later = NOW + timedelta(hours=1)
    async with env.uow() as uow:
        assert await uow.products.update_fields(
            a.id, {"name": "A2", "price": Decimal("3.50"), "category_id": second.id}, later
        )
        await uow.commit()

    async def refused_edit() -> None:  # a refused statement ends its unit of work: nothing is written
        async with env.uow() as uow:
            await uow.products.update_fields(a.id, {"category_id": uuid.uuid4(), "stock": 0}, later)
            await uow.commit()

    with pytest.raises(RuleViolation):
        await refused_edit()
    async with env.uow() as uow:
        stored = await uow.products.get(a.id)
        assert (stored.name, stored.price, stored.category_id, stored.stock) == ("A2", Decimal("3.50"), second.id, 5)
        assert stored.updated_at == later and stored.rating_avg is None
        assert await uow.products.withdraw(b.id, later)
        assert not await uow.products.withdraw(b.id, later)
        await uow.commit()
    async with env.uow() as uow:
        assert await uow.products.get(b.id) is None
        assert not await uow.products.update_fields(b.id, {"name": "zombie"}, later)
        assert set(await uow.products.withdraw_all_of_seller(seller.id, later)) == {a.id}
        await uow.commit()
    assert await env.queries.product(a.id) is None
    assert (await env.queries.product(c.id)).name == "C"
    assert set(await env.queries.product_summaries([a.id, b.id, c.id])) == {c.id}


async def test_detail_and_summary_views_carry_every_field(env: Env) -> None:
    seller = make_user("seller")
    category = make_category("Books", "books")
    product = make_product(seller, category, "Atlas", "12.50", description="Maps", stock=4)
    await seed(env, seller, categories=(category,), products=(product,))
    async with env.uow() as uow:
        await uow.products.apply_rating_change(product.id, 9, 2)
        await uow.commit()
    detail = await env.queries.product(product.id)
    assert detail == ProductDetail(
        id=product.id,
        seller=SellerRef(id=seller.id, username="seller"),
        name="Atlas",
        description="Maps",
        price=Decimal("12.50"),
        image_url=None,
        category=CategoryRef(id=category.id, name="Books", slug="books"),
        stock=4,
        rating_avg=4.5,
        review_count=2,
        favorite_count=0,
        created_at=product.created_at,
        updated_at=product.updated_at,
    )
    summary = (await env.queries.product_summaries([product.id]))[product.id]
    assert msgspec.structs.asdict(summary) == {
        k: v for k, v in msgspec.structs.asdict(detail).items() if k != "description"
    }
    for sort, key in (
        (ProductSort.NEWEST, product.created_at),
        (ProductSort.PRICE_ASC, Decimal("12.50")),
        (ProductSort.RATING, Decimal("4.50")),
    ):
        [(sort_key, listed)] = await env.queries.products(ProductFilter(), sort, None, 5)
        assert (sort_key, listed) == (key, summary), sort


async def test_rating_arithmetic_rounds_half_up_like_the_domain(env: Env) -> None:
    seller = make_user("seller")
    category = make_category("Books", "books")
    product = make_product(seller, category)
    await seed(env, seller, categories=(category,), products=(product,))
    # 1 five and 7 ones: 12/8 = 1.5; then remove a one: 11/7 = 1.571... -> 1.57; 1/8 = 0.125 -> 0.13.
    async with env.uow() as uow:
        await uow.products.apply_rating_change(product.id, 5, 1)
        for _ in range(7):
            await uow.products.apply_rating_change(product.id, 1, 1)
        await uow.commit()
    assert await env.counters(product.id) == (12, 8, Decimal("1.50"), 0)
    async with env.uow() as uow:
        await uow.products.apply_rating_change(product.id, -1, -1)
        await uow.commit()
    assert await env.counters(product.id) == (11, 7, Decimal("1.57"), 0)
    async with env.uow() as uow:
        await uow.products.apply_rating_change(product.id, -10, 1)
        await uow.commit()
    assert await env.counters(product.id) == (1, 8, Decimal("0.13"), 0)
    assert (await env.queries.product(product.id)).rating_avg == 0.13
    async with env.uow() as uow:
        await uow.products.apply_rating_change(product.id, -1, -8)
        await uow.commit()
    assert await env.counters(product.id) == (0, 0, None, 0)
    assert (await env.queries.product(product.id)).rating_avg is None


async def test_reviews_unique_guarded_update_delete_and_verified_purchase(env: Env) -> None:
    seller, buyer = make_user("seller"), make_user("buyer")
    category = make_category("Books", "books")
    product = make_product(seller, category)
    await seed(env, seller, buyer, categories=(category,), products=(product,))
    review = Review(
        id=new_id(),
        product_id=product.id,
        author_id=buyer.id,
        rating=3,
        comment="ok",
        verified_purchase=False,
        created_at=NOW,
        updated_at=NOW,
    )
    async with env.uow() as uow:
        assert not await uow.reviews.has_ordered(buyer.id, product.id)
        await uow.reviews.add(review)
        await uow.commit()
    await env.add_order_line(buyer.id, product)
    with pytest.raises(Conflict):
        async with env.uow() as uow:
            await uow.reviews.add(
                Review(
                    id=new_id(),
                    product_id=product.id,
                    author_id=buyer.id,
                    rating=5,
                    comment="",
                    verified_purchase=False,
                    created_at=NOW,
                    updated_at=NOW,
                )
            )
    async with env.uow() as uow:
        assert await uow.reviews.has_ordered(buyer.id, product.id)
        assert not await uow.reviews.has_ordered(seller.id, product.id)
        assert not await uow.reviews.update(review.id, expected_rating=4, rating=5, comment="x", now=NOW)
        assert await uow.reviews.update(review.id, expected_rating=3, rating=5, comment="great", now=NOW)
        await uow.commit()
    view = await env.queries.review(review.id)
    assert (view.rating, view.comment, view.author.username) == (5, "great", "buyer")
    page = await env.queries.reviews(product.id, None, 10)
    assert [r.id for r in page] == [review.id]
    async with env.uow() as uow:
        assert await uow.reviews.delete(review.id) == 5
        assert await uow.reviews.delete(review.id) is None
        await uow.commit()
    assert await env.queries.reviews(product.id, None, 10) == []


async def test_favorites_insert_once_and_cleanup(env: Env) -> None:
    seller, fan = make_user("seller"), make_user("fan")
    category = make_category("Books", "books")
    a = make_product(seller, category, "A")
    b = make_product(seller, category, "B", at=NOW + timedelta(seconds=1))
    await seed(env, seller, fan, categories=(category,), products=(a, b))
    async with env.uow() as uow:
        assert await uow.favorites.add(Favorite(id=new_id(), user_id=fan.id, product_id=a.id, created_at=NOW))
        assert not await uow.favorites.add(Favorite(id=new_id(), user_id=fan.id, product_id=a.id, created_at=NOW))
        assert await uow.favorites.add(
            Favorite(id=new_id(), user_id=fan.id, product_id=b.id, created_at=NOW + timedelta(seconds=1))
        )
        await uow.products.apply_favorite_change([a.id, b.id], 1)
        await uow.commit()
    favorites = await env.queries.favorites(fan.id, None, 10)
    assert [f.product.id for f in favorites] == [b.id, a.id]
    after = (favorites[0].created_at, favorites[0].favorite_id)
    assert [f.product.id for f in await env.queries.favorites(fan.id, after, 10)] == [a.id]
    assert (await env.queries.favorite(fan.id, a.id)).product.favorite_count == 1
    async with env.uow() as uow:
        assert await uow.favorites.remove(fan.id, a.id)
        assert not await uow.favorites.remove(fan.id, a.id)
        assert await uow.favorites.remove_all_of_user(fan.id) == [b.id]
        await uow.commit()
    assert await env.queries.favorites(fan.id, None, 10) == []


async def test_cart_cleanup(env: Env) -> None:
    seller, shopper, other = make_user("seller"), make_user("shopper"), make_user("other")
    category = make_category("Books", "books")
    a, b = make_product(seller, category, "A"), make_product(seller, category, "B")
    await seed(env, seller, shopper, other, categories=(category,), products=(a, b))
    for user, product in ((shopper, a), (shopper, b), (other, a), (other, b)):
        await env.add_cart_line(user.id, product)
    async with env.uow() as uow:
        await uow.cart_cleanup.remove_lines_of_products([a.id])
        await uow.commit()
    assert await env.cart_lines() == {(shopper.id, b.id), (other.id, b.id)}
    async with env.uow() as uow:
        await uow.cart.clear(CartOwner.of_user(shopper.id))
        await uow.commit()
    assert await env.cart_lines() == {(other.id, b.id)}


async def _walk(env: Env, filters: ProductFilter, sort: ProductSort, limit: int) -> list[tuple[Any, Any]]:
    seen: list[tuple[Any, Any]] = []
    after = None
    while True:
        rows = await env.queries.products(filters, sort, after, limit)
        seen.extend(rows)
        if len(rows) < limit:
            return seen
        after = (rows[-1][0], rows[-1][1].id)


async def test_listing_sorts_filters_and_keyset_walks(env: Env) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    top = make_category("Home", "home")
    kitchen = make_category("Kitchen", "kitchen", top.id)
    books = make_category("Books", "books")
    prices = ["5.00", "19.99", "5.00", "250.00", "0.99", "19.99", "42.00", "5.00"]
    products = tuple(
        make_product(
            alice if i % 2 else bob,
            (top, kitchen, books)[i % 3],
            f"Item {i}",
            price,
            stock=i % 3,
            at=NOW + timedelta(minutes=i // 2),
        )  # pairs share a created_at
        for i, price in enumerate(prices)
    )
    await seed(env, alice, bob, categories=(top, kitchen, books), products=products)
    async with env.uow() as uow:
        await uow.products.apply_rating_change(products[3].id, 9, 2)  # 4.50
        await uow.products.apply_rating_change(products[5].id, 5, 1)  # 5.00
        await uow.products.apply_rating_change(products[6].id, 9, 2)  # 4.50
        await uow.commit()
    everything = ProductFilter()
    expected = {
        ProductSort.NEWEST: sorted(products, key=lambda p: (p.created_at, p.id), reverse=True),
        ProductSort.PRICE_ASC: sorted(products, key=lambda p: (p.price, p.id)),
        ProductSort.PRICE_DESC: sorted(products, key=lambda p: (p.price, p.id), reverse=True),
    }
    for sort, ordered in expected.items():
        for limit in (1, 3, 100):
            walked = await _walk(env, everything, sort, limit)
            assert [s.id for _, s in walked] == [p.id for p in ordered], (sort, limit)
    by_rating = [s.id for _, s in await _walk(env, everything, ProductSort.RATING, 2)]
    assert by_rating[:3] == [products[5].id, *sorted([products[3].id, products[6].id], reverse=True)]
    assert len(by_rating) == len(products)

    def ids(rows: list[tuple[Any, Any]]) -> set[uuid.UUID]:
        return {s.id for _, s in rows}

    home_tree = frozenset({top.id, kitchen.id})
    assert ids(await _walk(env, ProductFilter(category_ids=home_tree), ProductSort.NEWEST, 2)) == {
        p.id for p in products if p.category_id in home_tree
    }
    assert ids(await _walk(env, ProductFilter(seller_id=alice.id), ProductSort.PRICE_ASC, 2)) == {
        p.id for p in products if p.seller_id == alice.id
    }
    assert ids(
        await _walk(env, ProductFilter(min_price=Decimal("5"), max_price=Decimal("19.99")), ProductSort.NEWEST, 2)
    ) == {p.id for p in products if Decimal(5) <= p.price <= Decimal("19.99")}
    assert ids(await _walk(env, ProductFilter(in_stock=True), ProductSort.NEWEST, 3)) == {
        p.id for p in products if p.stock > 0
    }
    assert ids(await _walk(env, ProductFilter(in_stock=False), ProductSort.NEWEST, 3)) == {
        p.id for p in products if p.stock == 0
    }
    assert await env.queries.products(ProductFilter(category_ids=frozenset()), ProductSort.NEWEST, None, 5) == []
    summary = (await env.queries.products(everything, ProductSort.NEWEST, None, 1))[0][1]
    assert summary.seller.username in {"alice", "bob"} and summary.category.slug in {"home", "kitchen", "books"}


@pytest.mark.parametrize(
    "hostile", ['"', "*", "AND(", "NEAR(a b)", "name:x", "'; DROP TABLE products; --", "a OR", "-", "^x", "x" * 200]
)
async def test_search_survives_hostile_queries(env: Env, hostile: str) -> None:
    seller = make_user("seller")
    category = make_category("Books", "books")
    await seed(env, seller, categories=(category,), products=(make_product(seller, category, "Plain book"),))
    for sort in (ProductSort.RELEVANCE, ProductSort.NEWEST):
        rows = await env.queries.products(ProductFilter(q=hostile), sort, None, 10)
        assert all(s.name == "Plain book" for _, s in rows)


async def test_search_matches_names_and_descriptions_with_relevance(env: Env) -> None:
    seller = make_user("seller")
    category = make_category("Home", "home")
    grinder = make_product(seller, category, "Coffee grinder", description="Burr grinder for espresso beans")
    mug = make_product(seller, category, "Travel mug", description="Keeps coffee hot for hours")
    lamp = make_product(seller, category, "Desk lamp", description="Warm light")
    await seed(env, seller, categories=(category,), products=(grinder, mug, lamp))
    rows = await env.queries.products(ProductFilter(q="coffee"), ProductSort.RELEVANCE, None, 10)
    assert [s.id for _, s in rows] == [grinder.id, mug.id]  # a name hit outranks a description hit
    assert [s.id for _, s in await env.queries.products(ProductFilter(q="espresso"), ProductSort.NEWEST, None, 10)] == [
        grinder.id
    ]
    assert await env.queries.products(ProductFilter(q="coffee lamp"), ProductSort.NEWEST, None, 10) == []
    first = await env.queries.products(ProductFilter(q="coffee"), ProductSort.RELEVANCE, None, 1)
    rest = await env.queries.products(
        ProductFilter(q="coffee"), ProductSort.RELEVANCE, (first[0][0], first[0][1].id), 10
    )
    assert [s.id for _, s in first + rest] == [grinder.id, mug.id]


async def test_public_profile(env: Env) -> None:
    seller, quiet = make_user("seller"), make_user("quiet")
    category = make_category("Books", "books")
    a, b, gone = (make_product(seller, category, n) for n in "ABC")
    await seed(env, seller, quiet, categories=(category,), products=(a, b, gone))
    async with env.uow() as uow:
        await uow.products.apply_rating_change(a.id, 9, 2)
        await uow.products.apply_rating_change(b.id, 2, 1)
        await uow.products.apply_rating_change(gone.id, 1, 1)
        await uow.products.withdraw(gone.id, NOW)
        await uow.commit()
    profile = await env.queries.public_profile(seller.id)
    assert (profile.username, profile.product_count, profile.rating_avg) == ("seller", 2, 3.67)
    assert (await env.queries.public_profile(quiet.id)).rating_avg is None
    async with env.uow() as uow:
        stored = await uow.users.get(quiet.id)
        stored.deleted_at = NOW
        await uow.users.update(stored)
        await uow.commit()
    assert await env.queries.public_profile(quiet.id) is None
    assert await env.queries.public_profile(uuid.uuid4()) is None


OPS = st.lists(
    st.tuples(st.integers(0, 3), st.sampled_from(["create", "edit", "delete"]), st.integers(1, 5)), max_size=25
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
async def test_rating_counters_equal_a_recount_after_any_sequence(env: Env, ops: list[tuple[int, str, int]]) -> None:
    """Create/edit/delete reviews through the use cases; the stored counters always match a recount."""
    seller = make_user(f"s{uuid.uuid4().hex[:8]}")
    reviewers = [make_user(f"r{uuid.uuid4().hex[:8]}") for _ in range(4)]
    category = make_category("Cat", f"cat-{uuid.uuid4().hex[:8]}")
    product = make_product(seller, category)
    await seed(env, seller, *reviewers, categories=(category,), products=(product,))

    class Clock:
        def now(self) -> datetime:
            return datetime.now(UTC)

    deps = CatalogDeps(uow=env.uow, queries=env.queries, clock=Clock())
    mine: dict[int, uuid.UUID] = {}
    for who, action, rating in ops:
        principal = Principal(id=reviewers[who].id, role=Role.USER)
        if action == "create":
            try:
                mine[who] = (await reviews.CreateReview(deps).execute(principal, product.id, rating=rating)).id
            except Conflict:
                assert who in mine
        elif action == "edit" and who in mine:
            await reviews.UpdateReview(deps).execute(principal, mine[who], rating=rating)
        elif action == "delete" and who in mine:
            await reviews.DeleteReview(deps).execute(principal, mine.pop(who))
    rating_sum, count = await env.recount(product.id)
    assert await env.counters(product.id) == (rating_sum, count, rating_average(rating_sum, count), 0)
