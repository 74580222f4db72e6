"""Catalog use cases on in-memory adapters: permissions, rules, pagination, counters."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.memory.catalog import MemoryCatalogQueries
from application.identity import Principal
from application.pagination import encode_cursor
from application.use_cases import users
from application.use_cases.catalog import categories, favorites, products, reviews
from application.use_cases.catalog.deps import CatalogDeps
from application.views.catalog import ProductSort
from domain.catalog import creates_cycle, descendants, rating_average, slugify, subtree_totals, unique_slug
from domain.errors import Conflict, Forbidden, InvalidInput, NotFound, RuleViolation
from domain.ids import new_id
from domain.orders import CartLine, CartOwner, Order, OrderLine, OrderStatus
from domain.users import Role, User
from tests.unit.fakes import World, make_world


@dataclass
class Shop:
    world: World
    deps: CatalogDeps
    admin: Principal
    alice: Principal
    bob: Principal

    @property
    def store(self) -> Any:
        return self.world.uow.store


async def make_shop() -> Shop:
    w = make_world()
    deps = CatalogDeps(uow=w.uow, queries=MemoryCatalogQueries(w.uow.store), clock=w.clock)
    people = {}
    async with w.uow() as uow:
        for name, role in (("admin", Role.ADMIN), ("alice", Role.USER), ("bob", Role.USER)):
            user = User(
                id=new_id(),
                username=name,
                email=f"{name}@example.com",
                password_hash="h",
                role=role,
                created_at=w.clock.now(),
                updated_at=w.clock.now(),
            )
            await uow.users.add(user)
            people[name] = Principal(id=user.id, role=role)
        await uow.commit()
    return Shop(w, deps, people["admin"], people["alice"], people["bob"])


async def product_of(shop: Shop, seller: Principal, category_id: uuid.UUID, **fields: Any) -> Any:
    body = {"name": "Lamp", "price": "10.00", "description": "", **fields}
    return await products.CreateProduct(shop.deps).execute(seller, category_id=category_id, **body)


# -- pure rules -------------------------------------------------------------------------------


def test_slugs_and_tree_rules() -> None:
    assert slugify("Électronique & Gadgets!") == "electronique-gadgets"
    assert slugify("!!!") == "category"
    assert unique_slug("phones", {"phones", "phones-2", "phones-4"}) == "phones-3"
    a, b, c, d = (uuid.uuid4() for _ in range(4))
    parents = {a: None, b: a, c: b, d: None}
    assert descendants(parents, a) == {a, b, c}
    assert creates_cycle(parents, a, c) and creates_cycle(parents, a, a)
    assert not creates_cycle(parents, c, d) and not creates_cycle(parents, b, None)
    assert subtree_totals(parents, {c: 2, b: 1, d: 5}) == {a: 3, b: 3, c: 2, d: 5}
    assert rating_average(1, 8) == Decimal("0.13") and rating_average(0, 0) is None


# -- categories -------------------------------------------------------------------------------


async def test_categories_are_admin_only_with_unique_slugs_and_no_cycles() -> None:
    shop = await make_shop()
    with pytest.raises(Forbidden):
        await categories.CreateCategory(shop.deps).execute(shop.alice, name="Electronics")
    top = await categories.CreateCategory(shop.deps).execute(shop.admin, name="Electronics")
    phones = await categories.CreateCategory(shop.deps).execute(shop.admin, name="Phones", parent_id=top.id)
    again = await categories.CreateCategory(shop.deps).execute(shop.admin, name="phones!")
    third = await categories.CreateCategory(shop.deps).execute(shop.admin, name="PHONES")
    assert (phones.slug, again.slug, third.slug) == ("phones", "phones-2", "phones-3")
    with pytest.raises(RuleViolation):
        await categories.CreateCategory(shop.deps).execute(shop.admin, name="Orphan", parent_id=uuid.uuid4())
    with pytest.raises(RuleViolation):
        await categories.CreateCategory(shop.deps).execute(shop.admin, name="   ")
    with pytest.raises(RuleViolation):
        await categories.UpdateCategory(shop.deps).execute(shop.admin, top.id, parent_id=phones.id)
    with pytest.raises(Forbidden):
        await categories.UpdateCategory(shop.deps).execute(shop.bob, top.id, name="Mine")
    moved = await categories.UpdateCategory(shop.deps).execute(
        shop.admin, again.id, name="Smartphones", parent_id=top.id
    )
    assert (moved.slug, moved.parent_id) == ("smartphones", top.id)
    kept = await categories.UpdateCategory(shop.deps).execute(shop.admin, third.id, name="Phones")
    assert kept.slug == "phones-3"  # still the same base: the slug stays put
    await product_of(shop, shop.alice, phones.id)
    with pytest.raises(Conflict):
        await categories.DeleteCategory(shop.deps).execute(shop.admin, phones.id)
    with pytest.raises(Conflict):
        await categories.DeleteCategory(shop.deps).execute(shop.admin, top.id)
    await categories.DeleteCategory(shop.deps).execute(shop.admin, third.id)
    with pytest.raises(NotFound):
        await categories.DeleteCategory(shop.deps).execute(shop.admin, third.id)
    counts = {c.slug: c.product_count for c in await categories.ListCategories(shop.deps).execute()}
    assert counts == {"electronics": 1, "phones": 1, "smartphones": 0}


# -- products ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"price": "0"}, "price"),
        ({"price": "-1.00"}, "price"),
        ({"price": "19.999"}, "price"),
        ({"price": "1000000.01"}, "price"),
        ({"price": "NaN"}, "price"),
        ({"price": "abc"}, "price"),
        ({"image_url": "ftp://example.com/a.png"}, "image_url"),
        ({"image_url": "javascript:alert(1)"}, "image_url"),
        ({"stock": -1}, "stock"),
        ({"description": "x" * 10_001}, "description"),
        ({"name": "nul\x00byte"}, "name"),
    ],
)
async def test_product_rules(fields: dict[str, Any], field: str) -> None:
    shop = await make_shop()
    category = await categories.CreateCategory(shop.deps).execute(shop.admin, name="Home")
    with pytest.raises(RuleViolation) as broken:
        await product_of(shop, shop.alice, category.id, **fields)
    assert broken.value.field == field
    assert not shop.store.table("products")


async def test_create_product_defaults_and_unknown_category() -> None:
    shop = await make_shop()
    category = await categories.CreateCategory(shop.deps).execute(shop.admin, name="Home")
    made = await product_of(shop, shop.alice, category.id, price=Decimal("1000000"), image_url="https://x.io/a.png")
    assert (made.price, made.stock, made.rating_avg, made.seller.username) == (Decimal("1000000.00"), 1, None, "alice")
    with pytest.raises(RuleViolation) as unknown:
        await product_of(shop, shop.alice, uuid.uuid4())
    assert unknown.value.field == "category_id"


async def test_only_seller_or_admin_changes_or_withdraws() -> None:
    shop = await make_shop()
    category = await categories.CreateCategory(shop.deps).execute(shop.admin, name="Home")
    made = await product_of(shop, shop.alice, category.id, stock=4)
    with pytest.raises(Forbidden):
        await products.UpdateProduct(shop.deps).execute(shop.bob, made.id, name="Stolen")
    with pytest.raises(Forbidden):
        await products.WithdrawProduct(shop.deps).execute(shop.bob, made.id)
    assert (await products.GetProduct(shop.deps).execute(made.id)).name == "Lamp"
    changed = await products.UpdateProduct(shop.deps).execute(shop.alice, made.id, price="12.50", image_url=None)
    assert (changed.price, changed.stock, changed.name) == (Decimal("12.50"), 4, "Lamp")
    by_admin = await products.UpdateProduct(shop.deps).execute(shop.admin, made.id, name="Checked lamp")
    assert by_admin.name == "Checked lamp"
    with pytest.raises(RuleViolation):
        await products.UpdateProduct(shop.deps).execute(shop.alice, made.id, category_id=uuid.uuid4())
    shop.store.table("cart_items")[new_id()] = CartLine(
        id=new_id(),
        owner=CartOwner.of_user(shop.bob.id),
        product_id=made.id,
        quantity=1,
        price_at_add=Decimal("12.50"),
        created_at=shop.world.clock.now(),
        updated_at=shop.world.clock.now(),
    )
    await products.WithdrawProduct(shop.deps).execute(shop.admin, made.id)
    assert not shop.store.table("cart_items")
    with pytest.raises(NotFound):
        await products.GetProduct(shop.deps).execute(made.id)
    with pytest.raises(NotFound):
        await products.UpdateProduct(shop.deps).execute(shop.alice, made.id, name="Back")
    assert (await products.ListProducts(shop.deps).execute()).items == []


async def test_listing_pages_cover_everything_once_and_validate_input() -> None:
    shop = await make_shop()
    top = await categories.CreateCategory(shop.deps).execute(shop.admin, name="Home")
    sub = await categories.CreateCategory(shop.deps).execute(shop.admin, name="Kitchen", parent_id=top.id)
    other = await categories.CreateCategory(shop.deps).execute(shop.admin, name="Books")
    made = []
    for i in range(23):
        made.append(
            await product_of(
                shop, shop.alice, (top, sub, other)[i % 3].id, name=f"Pan {i}", price=f"{(i * 7) % 11 + 1}.00"
            )
        )
        shop.world.clock.advance(seconds=i % 2)  # some share a timestamp
    for sort in ProductSort:
        if sort is ProductSort.RELEVANCE:
            continue
        seen, cursor = [], None
        while True:
            page = await products.ListProducts(shop.deps).execute(sort=sort, cursor=cursor, limit=4)
            seen += [p.id for p in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert sorted(seen) == sorted(p.id for p in made), sort
    page = await products.ListProducts(shop.deps).execute(category_id=top.id, limit=100)
    assert len(page.items) == 16 and page.next_cursor is None
    assert (await products.ListProducts(shop.deps).execute(category_id=uuid.uuid4())).items == []
    cursor = (await products.ListProducts(shop.deps).execute(limit=1)).next_cursor
    with pytest.raises(InvalidInput):
        await products.ListProducts(shop.deps).execute(sort=ProductSort.PRICE_ASC, cursor=cursor)
    bad = [
        {"limit": 0},
        {"limit": 101},
        {"cursor": "garbage"},
        {"cursor": cursor[:-3] + "AAA"},
        {"min_price": Decimal("5"), "max_price": Decimal("4")},
        {"min_price": Decimal("-1")},
        {"sort": ProductSort.RELEVANCE},
        {"q": "x" * 201},
        {"q": "nul\x00"},
    ]
    for kwargs in bad:
        with pytest.raises(InvalidInput):
            await products.ListProducts(shop.deps).execute(**kwargs)
    relevance = (await products.ListProducts(shop.deps).execute(q="pan", limit=1)).next_cursor
    assert len((await products.ListProducts(shop.deps).execute(q="pan", cursor=relevance, limit=100)).items) == 22
    minted = encode_cursor("relevance", 1.0, uuid.uuid4())  # well-formed, but not issued for this list
    for kwargs in ({"q": "pan", "cursor": minted}, {"q": "lamp", "cursor": relevance}):
        with pytest.raises(InvalidInput):
            await products.ListProducts(shop.deps).execute(**kwargs)
    assert len((await products.ListProducts(shop.deps).execute(q="  pan  ", limit=100)).items) == 23


# -- reviews ----------------------------------------------------------------------------------


async def test_review_rules_permissions_and_verified_purchase() -> None:
    shop = await make_shop()
    category = await categories.CreateCategory(shop.deps).execute(shop.admin, name="Home")
    made = await product_of(shop, shop.alice, category.id)
    with pytest.raises(Forbidden):
        await reviews.CreateReview(shop.deps).execute(shop.alice, made.id, rating=5)
    for rating in (0, 6):
        with pytest.raises(RuleViolation):
            await reviews.CreateReview(shop.deps).execute(shop.bob, made.id, rating=rating)
    order = Order(
        id=new_id(),
        buyer_id=shop.bob.id,
        status=OrderStatus.PLACED,
        total=made.price,
        created_at=shop.world.clock.now(),
        updated_at=shop.world.clock.now(),
    )
    order.lines.append(
        OrderLine(
            id=new_id(),
            order_id=order.id,
            product_id=made.id,
            seller_id=shop.alice.id,
            name=made.name,
            unit_price=made.price,
            quantity=1,
        )
    )
    shop.store.table("orders")[order.id] = order
    review = await reviews.CreateReview(shop.deps).execute(shop.bob, made.id, rating=4, comment="Bright")
    assert review.verified_purchase and review.author.username == "bob"
    with pytest.raises(Conflict):
        await reviews.CreateReview(shop.deps).execute(shop.bob, made.id, rating=2)
    admin_review = await reviews.CreateReview(shop.deps).execute(shop.admin, made.id, rating=1)
    assert not admin_review.verified_purchase
    with pytest.raises(Forbidden):
        await reviews.UpdateReview(shop.deps).execute(shop.admin, review.id, rating=1)
    with pytest.raises(Forbidden):
        await reviews.DeleteReview(shop.deps).execute(shop.alice, review.id)
    edited = await reviews.UpdateReview(shop.deps).execute(shop.bob, review.id, rating=5)
    assert (edited.rating, edited.comment) == (5, "Bright")
    assert (await products.GetProduct(shop.deps).execute(made.id)).rating_avg == 3.0
    await reviews.DeleteReview(shop.deps).execute(shop.admin, review.id)
    detail = await products.GetProduct(shop.deps).execute(made.id)
    assert (detail.rating_avg, detail.review_count) == (1.0, 1)
    with pytest.raises(NotFound):
        await reviews.DeleteReview(shop.deps).execute(shop.bob, review.id)
    page = await reviews.ListReviews(shop.deps).execute(made.id)
    assert [r.id for r in page.items] == [admin_review.id]
    with pytest.raises(NotFound):
        await reviews.ListReviews(shop.deps).execute(uuid.uuid4())


async def test_review_pages_newest_first() -> None:
    shop = await make_shop()
    category = await categories.CreateCategory(shop.deps).execute(shop.admin, name="Home")
    made = await product_of(shop, shop.admin, category.id)
    ids = []
    for i in range(7):
        async with shop.world.uow() as uow:
            user = User(
                id=new_id(),
                username=f"r{i}",
                email=f"r{i}@example.com",
                password_hash="h",
                role=Role.USER,
                created_at=shop.world.clock.now(),
                updated_at=shop.world.clock.now(),
            )
            await uow.users.add(user)
            await uow.commit()
        ids.append((await reviews.CreateReview(shop.deps).execute(Principal(user.id, Role.USER), made.id, rating=3)).id)
        shop.world.clock.advance(seconds=i % 2)
    seen, cursor = [], None
    while True:
        page = await reviews.ListReviews(shop.deps).execute(made.id, cursor=cursor, limit=3)
        seen += [r.id for r in page.items]
        if (cursor := page.next_cursor) is None:
            break
    assert seen == list(reversed(ids))


# -- favorites, profiles, account deletion ---------------------------------------------------


async def test_favorites_are_idempotent_and_counted() -> None:
    shop = await make_shop()
    category = await categories.CreateCategory(shop.deps).execute(shop.admin, name="Home")
    made = await product_of(shop, shop.alice, category.id)
    view, created = await favorites.AddFavorite(shop.deps).execute(shop.bob, made.id)
    assert created and view.product.favorite_count == 1
    view, created = await favorites.AddFavorite(shop.deps).execute(shop.bob, made.id)
    assert not created and view.product.favorite_count == 1
    await favorites.AddFavorite(shop.deps).execute(shop.admin, made.id)
    assert (await products.GetProduct(shop.deps).execute(made.id)).favorite_count == 2
    await favorites.RemoveFavorite(shop.deps).execute(shop.bob, made.id)
    await favorites.RemoveFavorite(shop.deps).execute(shop.bob, made.id)
    assert (await products.GetProduct(shop.deps).execute(made.id)).favorite_count == 1
    assert (await favorites.ListFavorites(shop.deps).execute(shop.bob)).items == []
    with pytest.raises(NotFound):
        await favorites.AddFavorite(shop.deps).execute(shop.bob, uuid.uuid4())
    await products.WithdrawProduct(shop.deps).execute(shop.alice, made.id)
    with pytest.raises(NotFound):
        await favorites.AddFavorite(shop.deps).execute(shop.bob, made.id)
    assert (await favorites.ListFavorites(shop.deps).execute(shop.admin)).items == []


async def test_deleting_an_account_cleans_up_the_catalog() -> None:
    shop = await make_shop()
    category = await categories.CreateCategory(shop.deps).execute(shop.admin, name="Home")
    alices = await product_of(shop, shop.alice, category.id)
    bobs = await product_of(shop, shop.bob, category.id)
    await favorites.AddFavorite(shop.deps).execute(shop.alice, bobs.id)
    await favorites.AddFavorite(shop.deps).execute(shop.bob, alices.id)
    now = shop.world.clock.now()
    for user, product in ((shop.alice, bobs), (shop.bob, alices)):
        line = CartLine(
            id=new_id(),
            owner=CartOwner.of_user(user.id),
            product_id=product.id,
            quantity=1,
            price_at_add=product.price,
            created_at=now,
            updated_at=now,
        )
        shop.store.table("cart_items")[line.id] = line
    profile = await users.GetPublicProfile(shop.deps.queries).execute(shop.alice.id)
    assert (profile.product_count, profile.rating_avg) == (1, None)
    await users.DeleteMe(shop.world.deps).execute(shop.alice)
    with pytest.raises(NotFound):
        await products.GetProduct(shop.deps).execute(alices.id)
    assert (await products.GetProduct(shop.deps).execute(bobs.id)).favorite_count == 0
    assert not shop.store.table("cart_items")
    # Alice's own favorites are gone; Bob's favorite of her withdrawn listing no longer lists.
    assert {f.user_id for f in shop.store.table("favorites").values()} == {shop.bob.id}
    assert (await favorites.ListFavorites(shop.deps).execute(shop.bob)).items == []
    with pytest.raises(NotFound):
        await users.GetPublicProfile(shop.deps.queries).execute(shop.alice.id)


@settings(max_examples=60, deadline=None)
@given(
    ops=st.lists(
        st.tuples(st.integers(0, 4), st.sampled_from(["create", "edit", "delete"]), st.integers(1, 5)), max_size=40
    )
)
async def test_rating_counters_match_a_recount(ops: list[tuple[int, str, int]]) -> None:
    shop = await make_shop()
    category = await categories.CreateCategory(shop.deps).execute(shop.admin, name="Home")
    made = await product_of(shop, shop.admin, category.id)
    reviewers = []
    async with shop.world.uow() as uow:
        for i in range(5):
            user = User(
                id=new_id(),
                username=f"rev{i}",
                email=f"rev{i}@example.com",
                password_hash="h",
                role=Role.USER,
                created_at=shop.world.clock.now(),
                updated_at=shop.world.clock.now(),
            )
            await uow.users.add(user)
            reviewers.append(Principal(user.id, Role.USER))
        await uow.commit()
    mine: dict[int, uuid.UUID] = {}
    for who, action, rating in ops:
        if action == "create":
            try:
                mine[who] = (await reviews.CreateReview(shop.deps).execute(reviewers[who], made.id, rating=rating)).id
            except Conflict:
                assert who in mine
        elif action == "edit" and who in mine:
            await reviews.UpdateReview(shop.deps).execute(reviewers[who], mine[who], rating=rating)
        elif action == "delete" and who in mine:
            await reviews.DeleteReview(shop.deps).execute(reviewers[who], mine.pop(who))
    ratings = [r.rating for r in shop.store.table("reviews").values()]
    stored = shop.store.table("products")[made.id]
    assert (stored.rating_sum, stored.review_count) == (sum(ratings), len(ratings))
    assert stored.rating_avg == rating_average(sum(ratings), len(ratings))
    detail = await products.GetProduct(shop.deps).execute(made.id)
    expected = rating_average(sum(ratings), len(ratings))
    assert detail.rating_avg == (None if expected is None else float(expected))


@pytest.mark.parametrize("key", ["1E+100000", "NaN", "Infinity", "1E+12"])
def test_a_forged_cursor_with_an_absurd_decimal_key_is_refused(key: str) -> None:
    from decimal import Decimal

    from application.pagination import decode_cursor
    from domain.errors import InvalidInput

    forged = encode_cursor("price_asc", Decimal(key), uuid.uuid4())  # well-formed, checksum included
    with pytest.raises(InvalidInput):
        decode_cursor(forged, "price_asc")


@pytest.mark.parametrize(("key", "decoded"), [("19.99", "19.99"), ("-1E-100000", "-0.00"), ("4.5", "4.50")])
def test_decimal_cursor_keys_come_back_with_two_places(key: str, decoded: str) -> None:
    from decimal import Decimal

    from application.pagination import decode_cursor

    cursor = encode_cursor("price_asc", Decimal(key), uuid.UUID(int=1))
    assert decode_cursor(cursor, "price_asc") == (Decimal(decoded), uuid.UUID(int=1))


async def test_uncategorised_products_are_listed_but_not_under_a_category() -> None:
    shop = await make_shop()
    top = await categories.CreateCategory(shop.deps).execute(shop.admin, name="Home")
    loose = await products.CreateProduct(shop.deps).execute(shop.alice, name="Cable box", price="9.00")
    placed = await product_of(shop, shop.alice, top.id)
    assert loose.category is None and placed.category is not None
    assert {p.id for p in (await products.ListProducts(shop.deps).execute()).items} == {loose.id, placed.id}
    assert [p.id for p in (await products.ListProducts(shop.deps).execute(category_id=top.id)).items] == [placed.id]
    moved = await products.UpdateProduct(shop.deps).execute(shop.alice, loose.id, category_id=top.id)
    assert moved.category is not None and moved.category.id == top.id
    cleared = await products.UpdateProduct(shop.deps).execute(shop.alice, placed.id, category_id=None)
    assert cleared.category is None
    with pytest.raises(RuleViolation):
        await products.CreateProduct(shop.deps).execute(shop.alice, name="X", price="1.00", category_id=uuid.uuid4())


async def test_price_filters_round_to_cents_the_way_that_selects_the_same_products() -> None:
    shop = await make_shop()
    top = await categories.CreateCategory(shop.deps).execute(shop.admin, name="Home")
    cheap = await product_of(shop, shop.alice, top.id, price="0.01")
    dear = await product_of(shop, shop.alice, top.id, price="9.99")

    async def ids(**kwargs: Any) -> set[uuid.UUID]:
        return {p.id for p in (await products.ListProducts(shop.deps).execute(**kwargs)).items}

    assert await ids(min_price=Decimal("1E-100000")) == {cheap.id, dear.id}
    assert await ids(min_price=Decimal("0.001")) == {cheap.id, dear.id}
    assert await ids(min_price=Decimal("0.011")) == {dear.id}
    assert await ids(max_price=Decimal("9.989")) == {cheap.id}
    assert await ids(max_price=Decimal("1E+100000")) == {cheap.id, dear.id}
