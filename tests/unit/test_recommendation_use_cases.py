"""Recommendation use cases on the in-memory adapters: feed rules, reasons, cold start, freshness."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.cache.memory_cache import MemoryCache
from adapters.memory.catalog import MemoryCatalogQueries
from adapters.memory.outbox import MemoryOutboxJobStore
from adapters.memory.recommendations import MemoryInteractionSource, MemoryNeighbourStore, MemoryRankingStore
from adapters.memory.store import MemoryStore
from adapters.memory.uow import MemoryUnitOfWorkFactory
from application.cached_catalog import CacheInvalidation, feed_namespace
from application.identity import Principal
from application.jobs import UPDATE_FEED, JobDispatcher
from application.ports.recommendations import RecentInteraction
from application.recommendations.model import ModelConfig
from application.use_cases import cart, orders
from application.use_cases.catalog import favorites, products, reviews
from application.use_cases.catalog.deps import CatalogDeps
from application.use_cases.recommendations import (
    COLD_USERS,
    POPULAR_NOW,
    GetFeed,
    GetModelState,
    GetSimilarProducts,
    RecommendationDeps,
    RefreshPopularItems,
    RefreshRecommendations,
    UpdateFeed,
)
from application.views.catalog import ProductSummary
from application.views.recommendations import Feed
from domain.catalog import Category, Favorite, Product, Review
from domain.errors import InvalidInput, NotFound
from domain.ids import new_id
from domain.orders import Order, OrderLine, OrderStatus
from domain.users import Role, User
from tests.unit.fakes import FakeClock, RecordingQueue

START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Shop:
    """A memory marketplace with the recommendation use cases wired onto it."""

    uow: MemoryUnitOfWorkFactory = field(default_factory=MemoryUnitOfWorkFactory)
    clock: FakeClock = field(default_factory=lambda: FakeClock(START + timedelta(days=30)))
    cache: MemoryCache = field(default_factory=MemoryCache)

    def __post_init__(self) -> None:
        self.store = self.uow.store
        self.queries = MemoryCatalogQueries(self.store)
        self.deps = RecommendationDeps(
            source=MemoryInteractionSource(self.store),
            store=MemoryNeighbourStore(self.store),
            queries=self.queries,
            cache=self.cache,
            clock=self.clock,
            rankings=MemoryRankingStore(self.store),
        )
        self.refresh = RefreshRecommendations(self.deps)
        self.feed = GetFeed(self.deps)
        self.similar = GetSimilarProducts(self.deps)
        self.catalog = CatalogDeps(
            uow=self.uow, queries=self.queries, clock=self.clock, invalidation=CacheInvalidation(self.cache)
        )
        self._tick = 0

    def at(self) -> datetime:
        self._tick += 1
        return START + timedelta(minutes=self._tick)

    def user(self, name: str) -> User:
        user = User(new_id(), name, f"{name}@example.com", "h", Role.USER, START, START)
        self.store.table("users")[user.id] = user
        return user

    def category(self, name: str, parent: Category | None = None) -> Category:
        category = Category(new_id(), name, name.lower(), parent.id if parent else None, START, START)
        self.store.table("categories")[category.id] = category
        return category

    def product(self, seller: User, category: Category, name: str) -> Product:
        product = Product(new_id(), seller.id, category.id, name, "", Decimal("9.99"), None, 5, START, START)
        self.store.table("products")[product.id] = product
        return product

    def favorite(self, user: User, product: Product) -> None:
        favorite = Favorite(new_id(), user.id, product.id, self.at())
        self.store.table("favorites")[favorite.id] = favorite

    def order(self, buyer: User, *products: Product, status: OrderStatus = OrderStatus.PLACED) -> None:
        when = self.at()
        order = Order(new_id(), buyer.id, status, Decimal("9.99") * len(products), when, when)
        order.lines = [OrderLine(new_id(), order.id, p.id, p.seller_id, p.name, p.price, 1) for p in products]
        self.store.table("orders")[order.id] = order

    def review(self, author: User, product: Product, rating: int) -> None:
        when = self.at()
        review = Review(new_id(), product.id, author.id, rating, "", False, when, when)
        self.store.table("reviews")[review.id] = review

    def withdraw(self, product: Product) -> None:
        self.store.table("products")[product.id].withdrawn_at = self.at()

    def tent_and_stove(self) -> tuple[User, Product, Product]:
        """A user and two products three fans favorited together: (user, tent, stove)."""
        seller, user = self.user("seller"), self.user("user")
        home = self.category("Home")
        tent, stove = self.product(seller, home, "Tent"), self.product(seller, home, "Stove")
        for fan in [self.user(f"fan{i}") for i in range(3)]:
            self.favorite(fan, tent)
            self.favorite(fan, stove)
        return user, tent, stove


def me(user: User) -> Principal:
    return Principal(id=user.id, role=user.role)


async def feed_of(shop: Shop, user: User, limit: int = 10) -> list[tuple[str, str, float]]:
    """(product name, reason, score) of the user's feed."""
    feed = await shop.feed.execute(me(user), limit=limit)
    return [(item.product.name, item.reason, item.score) for item in feed.items]


@pytest.fixture
def shop() -> Shop:
    return Shop()


async def test_cold_start_gives_popular_items_and_never_own_products(shop: Shop) -> None:
    seller, newcomer = shop.user("seller"), shop.user("newcomer")
    fans = [shop.user(f"fan{i}") for i in range(4)]
    home = shop.category("Home")
    hot, warm, cold, mine = (shop.product(seller, home, n) for n in ("Hot", "Warm", "Cold", "Mine"))
    newcomer_product = shop.product(newcomer, home, "Newcomer's own")
    for i, fan in enumerate(fans):
        shop.favorite(fan, hot)
        shop.favorite(fan, newcomer_product)
        if i < 2:
            shop.favorite(fan, warm)
    shop.favorite(fans[0], cold)
    assert await feed_of(shop, newcomer) == []  # a fresh install: no model, no popular items yet
    result = await shop.refresh.execute()
    assert result["interactions"] == 11 and result["popular"] == 4

    feed = await feed_of(shop, newcomer)
    assert [name for name, _, _ in feed] == ["Hot", "Warm", "Cold"]  # by popularity, never their own
    assert {reason for _, reason, _ in feed} == {POPULAR_NOW}
    scores = [score for _, _, score in feed]
    assert scores == sorted(scores, reverse=True) and scores[-1] > 0
    assert "Mine" not in {name for name, _, _ in feed}  # nobody touched it: not popular at all
    assert mine.id not in shop.store.table("popular_items")


async def test_reasons_name_the_product_behind_each_item_and_popular_fills_up(shop: Shop) -> None:
    seller, me_user = shop.user("seller"), shop.user("me")
    others = [shop.user(f"o{i}") for i in range(6)]
    home, garden = shop.category("Home"), shop.category("Garden")
    lamp, rug, vase, mug = (shop.product(seller, home, n) for n in ("Lamp", "Rug", "Vase", "Mug"))
    spade, hose = shop.product(seller, garden, "Spade"), shop.product(seller, garden, "Hose")
    for other in others[:3]:  # people who favorite the lamp also favorite the rug
        shop.favorite(other, lamp)
        shop.favorite(other, rug)
    for other in others[3:]:  # people who buy the spade also buy the hose
        shop.order(other, spade, hose)
    for fan in (shop.user(f"fan{i}") for i in range(4)):  # the vase is popular at home; the mug is not
        shop.favorite(fan, vase)
    shop.favorite(me_user, lamp)
    shop.order(me_user, spade)
    await shop.refresh.execute()

    feed = await feed_of(shop, me_user)
    reasons = {name: reason for name, reason, _ in feed}
    assert reasons["Rug"] == "because you favorited Lamp"
    assert reasons["Hose"] == "because you bought Spade"
    assert "Lamp" not in reasons and "Spade" not in reasons  # favorited and bought: never shown
    assert reasons["Vase"] == "popular in Home"  # the fill-up comes from my categories
    assert [name for name, _, _ in feed][-1] == "Vase"  # after the personal items
    scores = [score for _, _, score in feed]
    assert scores == sorted(scores, reverse=True)
    assert "Mug" not in reasons


async def test_good_reviews_count_and_bad_ones_only_hide(shop: Shop) -> None:
    seller, critic = shop.user("seller"), shop.user("critic")
    others = [shop.user(f"o{i}") for i in range(3)]
    home = shop.category("Home")
    book, pen, ink, bad = (shop.product(seller, home, n) for n in ("Book", "Pen", "Ink", "Bad"))
    for other in others:
        shop.favorite(other, book)
        shop.favorite(other, pen)
        shop.favorite(other, bad)
        shop.favorite(other, ink)
    shop.review(critic, book, 5)
    shop.review(critic, bad, 1)
    await shop.refresh.execute()
    reasons = {name: reason for name, reason, _ in await feed_of(shop, critic)}
    assert reasons["Pen"] == "because you rated Book highly"
    assert "Book" not in reasons and "Bad" not in reasons  # reviewed (any rating): known already


async def test_a_new_favorite_changes_the_feed_at_once_without_a_refresh(shop: Shop) -> None:
    seller, user = shop.user("seller"), shop.user("user")
    others = [shop.user(f"o{i}") for i in range(3)]
    home = shop.category("Home")
    tent, stove, popular = (shop.product(seller, home, n) for n in ("Tent", "Stove", "Popular"))
    for other in others:
        shop.favorite(other, tent)
        shop.favorite(other, stove)
        shop.favorite(other, popular)
    shop.favorite(others[0], shop.product(seller, home, "Extra"))
    await shop.refresh.execute()
    before = await feed_of(shop, user)
    assert {reason for _, reason, _ in before} == {POPULAR_NOW}
    assert "Tent" in {name for name, _, _ in before}

    await favorites.AddFavorite(shop.catalog).execute(me(user), tent.id)  # bumps feed:{user} after commit
    after = await feed_of(shop, user)
    reasons = {name: reason for name, reason, _ in after}
    assert "Tent" not in reasons
    assert reasons["Stove"] == "because you favorited Tent"
    assert after[0][0] in {"Stove", "Popular"} and after[0][1].startswith("because you favorited")


async def test_a_feed_read_while_the_feed_job_computes_does_not_outlive_the_job(shop: Shop) -> None:
    # Taking a favorite back leaves no newer signal to refuse the stored ranking, so a read that
    # lands while the job recomputes renders the old one: the job must not leave that cached.
    user, tent, _ = shop.tent_and_stove()
    await shop.refresh.execute()
    await favorites.AddFavorite(shop.catalog).execute(me(user), tent.id)
    await UpdateFeed(shop.deps).execute(user.id, [tent.id])
    assert "because you favorited Tent" in {reason for _, reason, _ in await feed_of(shop, user)}

    await favorites.RemoveFavorite(shop.catalog).execute(me(user), tent.id)
    seen_meanwhile: list[set[str]] = []

    async def read_the_feed() -> None:
        seen_meanwhile.append({reason for _, reason, _ in await feed_of(shop, user)})

    racing = dataclasses.replace(shop.deps, source=RacingSource(shop.store, read_the_feed))
    await UpdateFeed(racing).execute(user.id, [tent.id])

    assert seen_meanwhile == [{"because you favorited Tent"}]  # the stale read did land inside the job
    assert "because you favorited Tent" not in {reason for _, reason, _ in await feed_of(shop, user)}


async def test_withdrawn_sold_out_and_bought_products_leave_a_cached_feed_at_once(shop: Shop) -> None:
    seller, user = shop.user("seller"), shop.user("user")
    home = shop.category("Home")
    items = [shop.product(seller, home, f"P{i}") for i in range(4)]
    fan = shop.user("fan")
    for item in items:
        shop.favorite(fan, item)
    await shop.refresh.execute()
    assert {name for name, _, _ in await feed_of(shop, user)} == {"P0", "P1", "P2", "P3"}  # now cached
    # Each write goes through its use case, which tells the cache after its commit.
    await products.WithdrawProduct(shop.catalog).execute(me(seller), items[0].id)
    assert {name for name, _, _ in await feed_of(shop, user)} == {"P1", "P2", "P3"}
    await products.UpdateProduct(shop.catalog).execute(me(seller), items[1].id, stock=0)
    assert {name for name, _, _ in await feed_of(shop, user)} == {"P2", "P3"}
    await cart.AddToCart(shop.uow, shop.clock).execute(me(user), product_id=items[2].id, quantity=1)
    jobs = JobDispatcher(RecordingQueue(), MemoryOutboxJobStore(shop.store))
    invalidation = CacheInvalidation(shop.cache)
    await orders.Checkout(orders.OrderDeps(shop.uow, shop.clock, jobs, invalidation)).execute(me(user))
    assert {name for name, _, _ in await feed_of(shop, user)} == {"P3"}
    await products.UpdateProduct(shop.catalog).execute(me(seller), items[3].id, name="P3 renamed")
    assert {name for name, _, _ in await feed_of(shop, user)} == {"P3 renamed"}


async def test_limits_are_checked(shop: Shop) -> None:
    user = shop.user("user")
    for bad in (0, 51, -1):
        with pytest.raises(InvalidInput):
            await shop.feed.execute(me(user), limit=bad)
        with pytest.raises(InvalidInput):
            await shop.similar.execute(new_id(), limit=bad)


async def test_similar_products_from_neighbours_then_popular_of_the_category(shop: Shop) -> None:
    seller = shop.user("seller")
    users = [shop.user(f"u{i}") for i in range(4)]
    home, garden = shop.category("Home"), shop.category("Garden")
    a, b, c = (shop.product(seller, home, n) for n in ("A", "B", "C"))
    loner = shop.product(seller, home, "Loner")
    g = shop.product(seller, garden, "G")
    for user in users[:2]:
        shop.favorite(user, a)
        shop.favorite(user, b)
    for user in users:
        shop.favorite(user, c)
        shop.favorite(user, g)
    with pytest.raises(NotFound):
        await shop.similar.execute(new_id())
    await shop.refresh.execute()

    similar = await shop.similar.execute(a.id)
    names = [item.product.name for item in similar.items]
    assert names[0] == "B" and "A" not in names
    scores = [item.score for item in similar.items]
    assert scores == sorted(scores, reverse=True) and all(s > 0 for s in scores)

    # No model row for the loner: popular products of its category, with their scores.
    fallback = await shop.similar.execute(loner.id)
    names = [item.product.name for item in fallback.items]
    assert names[0] == "C" and sorted(names) == ["A", "B", "C"]
    assert all(item.score > 0 for item in fallback.items)
    assert len((await shop.similar.execute(a.id, limit=1)).items) == 1

    shop.withdraw(b)
    assert "B" not in [item.product.name for item in (await shop.similar.execute(a.id)).items]
    shop.withdraw(a)
    with pytest.raises(NotFound):
        await shop.similar.execute(a.id)


async def test_refresh_keeps_withdrawn_products_as_sources_only(shop: Shop) -> None:
    seller, user = shop.user("seller"), shop.user("user")
    fans = [shop.user(f"f{i}") for i in range(3)]
    home = shop.category("Home")
    old, new = shop.product(seller, home, "Old"), shop.product(seller, home, "New")
    for fan in fans:
        shop.favorite(fan, old)
        shop.favorite(fan, new)
    shop.favorite(user, old)
    shop.withdraw(old)
    state = await GetModelState(shop.deps).execute()
    assert state.built_at is None and state.refresh_due
    await shop.refresh.execute()
    model = shop.store.table("item_neighbours")
    assert str(old.id) in model and all(n != str(old.id) for n, _ in model.get(str(new.id), []))
    assert old.id not in shop.store.table("popular_items")
    reasons = {name: reason for name, reason, _ in await feed_of(shop, user)}
    assert reasons == {"New": "because you favorited Old"}  # a withdrawn favorite still explains
    state = await GetModelState(shop.deps).execute()
    assert state.built_at == shop.clock.now().timestamp() and not state.refresh_due


async def test_refresh_popular_items_alone_and_cancelled_orders(shop: Shop) -> None:
    seller, buyer, other = shop.user("seller"), shop.user("buyer"), shop.user("other")
    home = shop.category("Home")
    kept, cancelled = shop.product(seller, home, "Kept"), shop.product(seller, home, "Cancelled")
    shop.order(other, kept)
    shop.order(buyer, cancelled, status=OrderStatus.CANCELLED)
    result = await RefreshPopularItems(shop.deps).execute()
    assert result["popular"] == 1
    assert await shop.deps.store.built_at() is None  # the model itself is untouched
    # A cancelled order is no purchase: the product may be recommended again.
    shop.order(other, cancelled)
    await RefreshPopularItems(shop.deps).execute()
    assert {name for name, _, _ in await feed_of(shop, buyer)} == {"Kept", "Cancelled"}


async def test_feed_is_cached_until_the_users_namespace_is_bumped(shop: Shop) -> None:
    seller, user, fan = shop.user("seller"), shop.user("user"), shop.user("fan")
    home = shop.category("Home")
    first = shop.product(seller, home, "First")
    shop.favorite(fan, first)
    await shop.refresh.execute()
    assert [n for n, _, _ in await feed_of(shop, user)] == ["First"]
    second = shop.product(seller, home, "Second")
    shop.favorite(fan, second)
    shop.favorite(shop.user("fan2"), second)
    await RefreshPopularItems(shop.deps).execute()
    # The 5-minute popular refresh leaves computed rankings alone (they would all go cold)...
    assert [n for n, _, _ in await feed_of(shop, user)] == ["First"]
    assert [p.product_id for p in await shop.deps.store.popular(limit=5)] == [second.id, first.id]
    await shop.refresh.execute()  # ...the model refresh reaches every feed (and primes it)
    assert [n for n, _, _ in await feed_of(shop, user)] == ["Second", "First"]
    third = shop.product(seller, home, "Third")
    for i in range(3):
        shop.favorite(shop.user(f"fan3{i}"), third)
    shop.favorite(shop.user("fan4"), first)
    shop.favorite(shop.user("fan5"), first)
    assert [n for n, _, _ in await feed_of(shop, user)] == ["Second", "First"]  # cached meanwhile
    shop.favorite(user, first)  # the user's own write bumps their namespace (CacheInvalidation)
    await shop.cache.bump(feed_namespace(user.id))
    assert "First" not in [n for n, _, _ in await feed_of(shop, user)]


# -- the feed's rules hold for any interactions -------------------------------------------------

N_USERS, N_PRODUCTS = 6, 14
EVENTS = st.lists(
    st.tuples(
        st.sampled_from(["favorite", "order", "cancelled", "review"]),
        st.integers(0, N_USERS - 1),
        st.integers(0, N_PRODUCTS - 1),
        st.integers(1, 5),
    ),
    max_size=60,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=EVENTS,
    withdrawn=st.sets(st.integers(0, N_PRODUCTS - 1), max_size=4),
    viewer=st.integers(0, N_USERS - 1),
    limit=st.integers(1, 50),
    refresh_first=st.booleans(),
)
async def test_feed_never_shows_own_bought_favorited_reviewed_or_withdrawn(
    events: list[tuple[str, int, int, int]], withdrawn: set[int], viewer: int, limit: int, refresh_first: bool
) -> None:
    shop = Shop()
    users = [shop.user(f"u{i}") for i in range(N_USERS)]
    categories = [shop.category(f"C{i}") for i in range(3)]
    # Users 0-2 also sell: every product has one of them as its seller.
    products = [shop.product(users[i % 3], categories[i % 3], f"P{i}") for i in range(N_PRODUCTS)]
    seen: dict[int, set[int]] = {i: set() for i in range(N_USERS)}
    for kind, u, p, rating in events:
        if products[p].seller_id == users[u].id:
            continue  # the use cases refuse buying or reviewing one's own product
        if kind == "favorite":
            shop.favorite(users[u], products[p])
        elif kind == "order":
            shop.order(users[u], products[p])
        elif kind == "cancelled":
            shop.order(users[u], products[p], status=OrderStatus.CANCELLED)
            continue  # a cancelled order hides nothing
        else:
            shop.review(users[u], products[p], rating)
        seen[u].add(p)
    if refresh_first:
        await shop.refresh.execute()
    for p in withdrawn:
        shop.withdraw(products[p])

    feed = (await shop.feed.execute(me(users[viewer]), limit=limit)).items
    shown = [item.product.id for item in feed]
    index = {product.id: i for i, product in enumerate(products)}
    assert len(feed) <= limit
    assert len(set(shown)) == len(shown)
    for item in feed:
        i = index[item.product.id]
        assert item.product.seller.id != users[viewer].id
        assert i not in seen[viewer]
        assert i not in withdrawn
        assert item.reason
    scores = [item.score for item in feed]
    assert scores == sorted(scores, reverse=True)
    assert all(score > 0 for score in scores)


async def test_similar_falls_back_to_popular_products_of_sub_categories_too(shop: Shop) -> None:
    seller, fan = shop.user("seller"), shop.user("fan")
    home = shop.category("Home")
    kitchen, garden = shop.category("Kitchen", home), shop.category("Garden")
    plant = shop.product(seller, home, "Plant")
    pan, spade = shop.product(seller, kitchen, "Pan"), shop.product(seller, garden, "Spade")
    shop.favorite(fan, pan)
    shop.favorite(fan, spade)
    await shop.refresh.execute()
    assert [item.product.name for item in (await shop.similar.execute(plant.id)).items] == ["Pan"]
    assert [item.product.name for item in (await shop.similar.execute(pan.id)).items] == ["Spade"]  # the model
    reasons = {name: reason for name, reason, _ in await feed_of(shop, fan)}
    assert reasons == {}  # everything popular is theirs already


class CountingSource(MemoryInteractionSource):
    """Counts the per-user reads a computed ranking makes (a primed one makes none)."""

    reads = 0

    async def recent_interactions(self, user_id: uuid.UUID, *, limit: int = 200) -> list[RecentInteraction]:
        CountingSource.reads += 1
        return await super().recent_interactions(user_id, limit=limit)


async def test_a_refresh_primes_feeds_so_a_request_computes_nothing(shop: Shop) -> None:
    user, tent, _ = shop.tent_and_stove()
    shop.favorite(user, tent)
    source = CountingSource(shop.store)
    deps = dataclasses.replace(shop.deps, source=source)

    result = await RefreshRecommendations(deps).execute()
    CountingSource.reads = 0
    feed = await GetFeed(deps).execute(me(user))

    assert result["primed_feeds"] == 4
    assert [(i.product.name, i.reason) for i in feed.items] == [("Stove", "because you favorited Tent")]
    assert CountingSource.reads == 0  # served from the primed ranking


async def test_update_feed_gives_a_product_listed_after_the_refresh_live_neighbours(shop: Shop) -> None:
    seller, user = shop.user("seller"), shop.user("user")
    home = shop.category("Home")
    early = shop.user("early")
    for name in ("Old", "Older"):
        shop.favorite(early, shop.product(seller, home, name))
    await shop.refresh.execute()  # the model knows nothing of the products below
    lamp, shade, bulb = (shop.product(seller, home, n) for n in ("Lamp", "Shade", "Bulb"))
    for i in range(3):
        fan = shop.user(f"fan{i}")
        shop.favorite(fan, lamp)
        shop.favorite(fan, shade)
        if i == 0:
            shop.favorite(fan, bulb)
    update = UpdateFeed(shop.deps)

    shop.favorite(user, lamp)
    await shop.cache.bump(feed_namespace(user.id))  # what the favorite's commit does
    note = await update.execute(user.id, [lamp.id])

    assert "1 products given live neighbours" in note
    feed = await feed_of(shop, user)
    assert feed[0][:2] == ("Shade", "because you favorited Lamp")
    assert feed[1][:2] == ("Bulb", "because you favorited Lamp")
    assert feed[0][2] > feed[1][2]
    similar = await shop.similar.execute(lamp.id)
    assert [item.product.name for item in similar.items][:2] == ["Shade", "Bulb"]


async def test_update_feed_leaves_well_known_products_to_the_model(shop: Shop) -> None:
    seller, user = shop.user("seller"), shop.user("user")
    home = shop.category("Home")
    hit, other = shop.product(seller, home, "Hit"), shop.product(seller, home, "Other")
    for i in range(COLD_USERS + 1):
        fan = shop.user(f"fan{i}")
        shop.favorite(fan, hit)
        shop.favorite(fan, other)
    await shop.refresh.execute()
    before = await shop.deps.store.neighbours([hit.id])

    note = await UpdateFeed(shop.deps).execute(user.id, [hit.id])

    assert "0 products given live neighbours" in note
    assert await shop.deps.store.neighbours([hit.id]) == before


async def test_the_feed_never_shows_sold_out_products(shop: Shop) -> None:
    seller, user = shop.user("seller"), shop.user("user")
    home = shop.category("Home")
    items = [shop.product(seller, home, f"P{i}") for i in range(3)]
    fan = shop.user("fan")
    for item in items:
        shop.favorite(fan, item)
    await shop.refresh.execute()
    shop.store.table("products")[items[1].id].stock = 0

    assert {name for name, _, _ in await feed_of(shop, user)} == {"P0", "P2"}


async def test_a_favorite_records_the_feed_job_in_its_transaction() -> None:
    shop = Shop()
    queue = RecordingQueue()
    deps = dataclasses.replace(shop.catalog, jobs=JobDispatcher(queue, MemoryOutboxJobStore(shop.store)))
    seller, user = shop.user("seller"), shop.user("user")
    tent = shop.product(seller, shop.category("Home"), "Tent")

    await favorites.AddFavorite(deps).execute(me(user), tent.id)
    await favorites.AddFavorite(deps).execute(me(user), tent.id)  # already a favorite: no new job
    review = await reviews.CreateReview(deps).execute(me(user), tent.id, rating=5)
    # Taking them back changes the feed too ("because you favorited Tent" must go).
    await favorites.RemoveFavorite(deps).execute(me(user), tent.id)
    await favorites.RemoveFavorite(deps).execute(me(user), tent.id)  # not a favorite any more: no job
    await reviews.DeleteReview(deps).execute(me(user), review.id)

    assert [(kind, payload["product_ids"]) for kind, payload, _ in queue.jobs] == [
        (UPDATE_FEED, [str(tent.id)]),
    ] * 4
    assert {row["kind"] for row in shop.store.table("outbox").values()} == {UPDATE_FEED}


async def test_a_stored_ranking_serves_when_the_cache_lost_it_until_a_newer_signal(shop: Shop) -> None:
    seller, user = shop.user("seller"), shop.user("user")
    home = shop.category("Home")
    tent, stove, lamp = (shop.product(seller, home, n) for n in ("Tent", "Stove", "Lamp"))
    for fan in [shop.user(f"f{i}") for i in range(3)]:
        for item in (tent, stove, lamp):
            shop.favorite(fan, item)
    shop.favorite(user, tent)
    await shop.refresh.execute()
    source = CountingSource(shop.store)
    deps = dataclasses.replace(shop.deps, source=source, cache=MemoryCache())  # Redis flushed, say
    CountingSource.reads = 0

    assert {i.product.name for i in (await GetFeed(deps).execute(me(user))).items} == {"Stove", "Lamp"}
    assert CountingSource.reads == 0  # one stored-ranking read, nothing computed

    shop.clock.advance(minutes=1)
    shop.store.table("favorites")[new_id()] = Favorite(new_id(), user.id, stove.id, shop.clock.now())
    deps = dataclasses.replace(deps, cache=MemoryCache())
    assert {i.product.name for i in (await GetFeed(deps).execute(me(user))).items} == {"Lamp"}
    assert CountingSource.reads == 1  # the stored ranking predates the favorite: computed again


# -- the cached feed body: one read when warm, never stale after a write's bump -----------------


class CountingCache(MemoryCache):
    gets = 0

    async def get(self, key: str) -> bytes | None:
        self.gets += 1
        return await super().get(key)


class CountingQueries(MemoryCatalogQueries):
    summaries = 0

    async def product_summaries(self, product_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, ProductSummary]:
        self.summaries += 1
        return await super().product_summaries(product_ids)


async def test_a_warm_feed_is_one_cache_read_of_its_encoded_body() -> None:
    shop = Shop(cache=CountingCache())
    user, tent, _ = shop.tent_and_stove()
    shop.favorite(user, tent)
    queries, source = CountingQueries(shop.store), CountingSource(shop.store)
    deps = dataclasses.replace(shop.deps, queries=queries, source=source)
    await RefreshRecommendations(deps).execute()
    feed = GetFeed(deps)
    first = await feed.encoded(me(user))
    assert queries.summaries == 1  # rendered once

    shop.cache.gets, CountingSource.reads = 0, 0
    assert await feed.encoded(me(user)) == first
    assert (shop.cache.gets, queries.summaries, CountingSource.reads) == (1, 1, 0)
    decoded = msgspec.json.decode(first, type=Feed)
    assert [(i.product.name, i.reason) for i in decoded.items] == [("Stove", "because you favorited Tent")]
    assert await feed.execute(me(user)) == decoded
    assert await feed.encoded(me(user), limit=1) == first  # one item either way, but its own entry
    assert queries.summaries == 2


class RacingSource(MemoryInteractionSource):
    """Reads a user's interactions, then lets ``write`` commit (and bump) before handing them
    over: a write that lands while a ranking is computed from the data before it."""

    def __init__(self, store: MemoryStore, write: Callable[[], Awaitable[None]]) -> None:
        super().__init__(store)
        self.write: Callable[[], Awaitable[None]] | None = write

    async def recent_interactions(self, user_id: uuid.UUID, *, limit: int = 200) -> list[RecentInteraction]:
        rows = await super().recent_interactions(user_id, limit=limit)
        if self.write is not None:
            write, self.write = self.write, None
            await write()
        return rows


class RacingQueries(MemoryCatalogQueries):
    """Looks products up, then lets ``write`` commit (and bump) before handing them over."""

    def __init__(self, store: MemoryStore, write: Callable[[], Awaitable[None]]) -> None:
        super().__init__(store)
        self.write: Callable[[], Awaitable[None]] | None = write

    async def product_summaries(self, product_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, ProductSummary]:
        found = await super().product_summaries(product_ids)
        if self.write is not None:
            write, self.write = self.write, None
            await write()
        return found


def two_pairs(shop: Shop) -> tuple[User, dict[str, Product]]:
    """Tent and stove favorited together, lamp and shade too; the user has favorited the tent."""
    seller, user = shop.user("seller"), shop.user("user")
    home = shop.category("Home")
    made = {name: shop.product(seller, home, name) for name in ("Tent", "Stove", "Lamp", "Shade")}
    for i in range(3):
        for pair in (("Tent", "Stove"), ("Lamp", "Shade")):
            fan = shop.user(f"fan-{pair[0]}-{i}")
            for name in pair:
                shop.favorite(fan, made[name])
    shop.favorite(user, made["Tent"])
    return user, made


@pytest.mark.parametrize("primer", ["prime", "update_feed"])
async def test_a_write_racing_a_prime_shows_in_every_feed_served_after_its_bump(shop: Shop, primer: str) -> None:
    user, made = two_pairs(shop)
    await shop.refresh.execute()
    assert ("Stove", "because you favorited Tent") in [(n, r) for n, r, _ in await feed_of(shop, user)]

    async def favorite_lamp() -> None:
        shop.clock.advance(seconds=1)
        await favorites.AddFavorite(shop.catalog).execute(me(user), made["Lamp"].id)  # commits, then bumps

    deps = dataclasses.replace(shop.deps, source=RacingSource(shop.store, favorite_lamp))
    if primer == "prime":
        await GetFeed(deps).prime(user.id)
    else:
        await UpdateFeed(deps).execute(user.id, [made["Tent"].id])
    _, primed = shop.store.table("feed_rankings")[user.id]
    assert "because you favorited Lamp" not in {entry.reason for entry in primed}  # it raced: stale

    for feed in (GetFeed(shop.deps), GetFeed(dataclasses.replace(shop.deps, cache=MemoryCache()))):
        reasons = {item.product.name: item.reason for item in (await feed.execute(me(user))).items}
        assert "Lamp" not in reasons  # favorited now: never shown again
        assert reasons["Shade"] == "because you favorited Lamp"


async def test_a_feed_rendered_while_a_product_is_withdrawn_is_not_served_after_the_bump(shop: Shop) -> None:
    user, made = two_pairs(shop)
    seller = next(u for u in shop.store.table("users").values() if u.username == "seller")
    await shop.refresh.execute()

    async def withdraw_stove() -> None:
        await products.WithdrawProduct(shop.catalog).execute(me(seller), made["Stove"].id)

    feed = GetFeed(dataclasses.replace(shop.deps, queries=RacingQueries(shop.store, withdraw_stove)))
    raced = {item.product.name for item in (await feed.execute(me(user))).items}
    assert "Stove" in raced  # looked up just before the withdrawal committed
    assert "Stove" not in {item.product.name for item in (await feed.execute(me(user))).items}


async def test_a_refresh_stores_als_vectors_and_feeds_blend_them_under_the_same_rules(shop: Shop) -> None:
    seller, user = shop.user("seller"), shop.user("user")
    home = shop.category("Home")
    goods = [shop.product(seller, home, f"P{n:02d}") for n in range(14)]
    for fan in range(40):  # overlapping tastes: each fan takes four goods along a stride
        for n in range(4):
            shop.favorite(shop.user(f"fan{fan}"), goods[(fan * 3 + n * 2) % len(goods)])
    shop.favorite(user, goods[0])
    shop.order(user, goods[2])
    own = shop.product(user, home, "Own")
    deps = dataclasses.replace(shop.deps, config=ModelConfig(method="ease", als_rank=3, als_iterations=6))

    await RefreshRecommendations(deps).execute()
    factors = await deps.store.factors()
    assert factors is not None and len(factors.items) == len(goods)
    scorer = await deps.factors.scorer(deps.store)
    assert scorer is not None and scorer.factors == factors
    assert await deps.factors.scorer(deps.store) is scorer  # loaded once per model

    feed = await GetFeed(deps).execute(me(user), limit=20)
    names = [item.product.name for item in feed.items]
    assert names and not {"P00", "P02", "Own"} & set(names)
    personal = [item.reason for item in feed.items if not item.reason.startswith("popular")]
    assert personal and set(personal) <= {"because you favorited P00", "because you bought P02"}
    assert [item.score for item in feed.items] == sorted((item.score for item in feed.items), reverse=True)
    assert own.id not in {item.product.id for item in feed.items}

    shop.clock.advance(minutes=5)
    await RefreshRecommendations(deps).execute()
    assert await deps.factors.scorer(deps.store) is not scorer  # a new model is loaded again
