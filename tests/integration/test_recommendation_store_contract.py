"""One contract for the recommendation adapters (interactions, model store) on memory, SQLite and Postgres."""

from __future__ import annotations

import asyncio
import uuid
from array import array
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import polars as pl
import pytest

from application.ports.recommendations import (
    CoInteractions,
    FittedModel,
    ItemFactors,
    NeighbourTable,
    PopularItem,
    PopularScore,
)
from application.recommendations.model import NEIGHBOUR_SCHEMA, neighbour_table
from application.views.recommendations import Ranked
from domain.catalog import Category, Favorite, Product, Review
from domain.ids import new_id
from domain.orders import Order, OrderLine, OrderStatus
from domain.users import Role, User
from tests.conftest import _truncate

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


@dataclass
class Env:
    kind: str
    uow: Any
    source: Any
    store: Any

    async def user(self, name: str) -> User:
        user = User(new_id(), name, f"{name}@example.com", "h", Role.USER, T0, T0)
        async with self.uow() as uow:
            await uow.users.add(user)
            await uow.commit()
        return user

    async def category(self, name: str) -> Category:
        category = Category(new_id(), name, f"{name.lower()}-{uuid.uuid4().hex[:6]}", None, T0, T0)
        async with self.uow() as uow:
            await uow.categories.add(category)
            await uow.commit()
        return category

    async def products(self, seller: User, category: Category, *names: str) -> list[Product]:
        made = [Product(new_id(), seller.id, category.id, n, "", Decimal("5.00"), None, 9, T0, T0) for n in names]
        async with self.uow() as uow:
            for product in made:
                await uow.products.add(product)
            await uow.commit()
        return made

    async def favorite(self, user: User, product: Product, when: datetime) -> None:
        async with self.uow() as uow:
            await uow.favorites.add(Favorite(new_id(), user.id, product.id, when))
            await uow.commit()

    async def review(self, user: User, product: Product, rating: int, when: datetime) -> None:
        async with self.uow() as uow:
            await uow.reviews.add(Review(new_id(), product.id, user.id, rating, "", False, when, when))
            await uow.commit()

    async def order(self, buyer: User, products: list[Product], when: datetime, *, cancel: bool = False) -> None:
        order = Order(new_id(), buyer.id, OrderStatus.PLACED, Decimal("5.00") * len(products), when, when)
        order.lines = [OrderLine(new_id(), order.id, p.id, p.seller_id, p.name, p.price, 1) for p in products]
        async with self.uow() as uow:
            assert await uow.orders.add(order)
            if cancel:
                assert await uow.orders.change_status(
                    order.id, expected=OrderStatus.PLACED, new=OrderStatus.CANCELLED, now=when
                )
            await uow.commit()

    async def withdraw(self, product: Product) -> None:
        async with self.uow() as uow:
            assert await uow.products.withdraw(product.id, T0)
            await uow.commit()


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def env(request: pytest.FixtureRequest) -> Any:
    if request.param == "memory":
        from adapters.memory.recommendations import MemoryInteractionSource, MemoryNeighbourStore
        from adapters.memory.uow import MemoryUnitOfWorkFactory

        factory = MemoryUnitOfWorkFactory()
        yield Env("memory", factory, MemoryInteractionSource(factory.store), MemoryNeighbourStore(factory.store))
        return
    from adapters.sql.database import open_database
    from adapters.sql.recommendations import SqlInteractionSource, SqlNeighbourStore
    from adapters.sql.uow import SqlUnitOfWorkFactory

    if request.param == "postgres":
        url = request.getfixturevalue("pg_url")
        await _truncate(url)
    else:
        url = request.getfixturevalue("sqlite_url")
    db = open_database(url, pool_size=4)
    # Small insert batches, so a replace is many statements (the atomicity test needs that).
    yield Env(request.param, SqlUnitOfWorkFactory(db), SqlInteractionSource(db), SqlNeighbourStore(db, insert_batch=7))
    await db.dispose()


async def _world(env: Env) -> dict[str, Any]:
    seller, buyer, other = await env.user("seller"), await env.user("buyer"), await env.user("other")
    home, garden = await env.category("Home"), await env.category("Garden")
    lamp, rug, gone = await env.products(seller, home, "Lamp", "Rug", "Gone")
    spade, hose, own = await env.products(buyer, garden, "Spade", "Hose", "Own")
    await env.favorite(buyer, lamp, at(1))
    await env.favorite(other, gone, at(2))
    await env.order(buyer, [rug], at(3))
    await env.order(buyer, [lamp], at(4), cancel=True)
    await env.order(other, [spade, hose], at(5))
    await env.review(buyer, rug, 5, at(6))
    await env.review(other, lamp, 4, at(7))
    await env.review(other, rug, 3, at(8))  # below 4: no signal
    await env.withdraw(gone)
    return {
        "users": (seller, buyer, other),
        "categories": (home, garden),
        "products": (lamp, rug, gone, spade, hose, own),
    }


async def test_all_interactions_are_favorites_placed_purchases_and_good_reviews(env: Env) -> None:
    assert not await env.source.any_interactions()
    w = await _world(env)
    _, buyer, other = w["users"]
    home, garden = w["categories"]
    lamp, rug, gone, spade, hose, _ = w["products"]
    batches = [batch async for batch in env.source.all_interactions(batch_size=3)]
    assert all(0 < len(batch) <= 3 for batch in batches)
    rows = {(r.user_id, r.product_id, r.kind, r.at, r.category_id, r.live) for batch in batches for r in batch}
    assert rows == {
        (buyer.id, lamp.id, "favorite", at(1), home.id, True),
        (other.id, gone.id, "favorite", at(2), home.id, False),
        (buyer.id, rug.id, "purchase", at(3), home.id, True),
        (other.id, spade.id, "purchase", at(5), garden.id, True),
        (other.id, hose.id, "purchase", at(5), garden.id, True),
        (buyer.id, rug.id, "review", at(6), home.id, True),
        (other.id, lamp.id, "review", at(7), home.id, True),
    }
    assert await env.source.any_interactions()


async def test_recent_interactions_are_the_users_newest_signals(env: Env) -> None:
    w = await _world(env)
    _, buyer, other = w["users"]
    home, garden = w["categories"]
    lamp, rug, gone, spade, hose, _ = w["products"]
    recent = await env.source.recent_interactions(buyer.id)
    assert [(r.product_id, r.kind, r.at, r.category_id, r.name) for r in recent] == [
        (rug.id, "review", at(6), home.id, "Rug"),
        (rug.id, "purchase", at(3), home.id, "Rug"),
        (lamp.id, "favorite", at(1), home.id, "Lamp"),
    ]
    assert [r.kind for r in await env.source.recent_interactions(buyer.id, limit=2)] == ["review", "purchase"]
    others = await env.source.recent_interactions(other.id)
    assert (others[0].product_id, others[0].kind) == (lamp.id, "review")
    assert {(r.product_id, r.kind) for r in others} == {
        (lamp.id, "review"),
        (spade.id, "purchase"),
        (hose.id, "purchase"),
        (gone.id, "favorite"),  # withdrawn products still say what the user likes
    }
    assert await env.source.recent_interactions(new_id()) == []


async def test_hidden_among_own_withdrawn_bought_favorited_and_reviewed(env: Env) -> None:
    w = await _world(env)
    seller, buyer, other = w["users"]
    lamp, rug, gone, spade, hose, own = w["products"]
    everything = [p.id for p in w["products"]]
    # buyer: favorited lamp (its order was cancelled), bought and reviewed rug, sells spade, hose, own.
    assert await env.source.hidden_among(buyer.id, everything) == {lamp.id, rug.id, gone.id, spade.id, hose.id, own.id}
    # other: favorited gone, bought spade and hose, reviewed lamp (4) and rug (3: still seen).
    assert await env.source.hidden_among(other.id, everything) == {gone.id, spade.id, hose.id, lamp.id, rug.id}
    assert await env.source.hidden_among(seller.id, everything) == {lamp.id, rug.id, gone.id}
    assert await env.source.hidden_among(other.id, [own.id, spade.id]) == {spade.id}
    assert await env.source.hidden_among(other.id, []) == set()


def _table(lists: list[tuple[Product, list[tuple[Product, float]]]]) -> NeighbourTable:
    """The store's input built as a refresh builds it: from a neighbour frame, best first."""
    rows = [(str(p.id), str(n.id), score) for p, ns in lists for n, score in ns]
    frame = pl.DataFrame(rows, schema=NEIGHBOUR_SCHEMA, orient="row")
    return neighbour_table(frame)


async def test_the_store_swaps_whole_models_and_reads_them_back(env: Env) -> None:
    w = await _world(env)
    home, garden = w["categories"]
    lamp, rug, gone, spade, hose, own = w["products"]
    assert await env.store.built_at() is None
    assert await env.store.neighbours([lamp.id]) == {}
    assert await env.store.popular(limit=5) == []

    first = _table([(lamp, [(rug, 0.75), (own, 1 / 3), (hose, 1e-9)]), (gone, [(lamp, 0.5)]), (spade, [(hose, 2.0)])])
    popular = [
        PopularScore(lamp.id, home.id, 5.5),
        PopularScore(rug.id, home.id, 2.25),
        PopularScore(hose.id, garden.id, 3.0),
        PopularScore(spade.id, garden.id, 3.0),
        PopularScore(own.id, garden.id, 0.5),
    ]
    await env.store.replace(FittedModel(first, popular, at(60)))
    assert await env.store.built_at() == at(60)
    assert await env.store.neighbours([lamp.id, gone.id, rug.id]) == {
        k: v for k, v in first.rows() if k in {str(lamp.id), str(gone.id)}
    }
    assert (await env.store.neighbours([lamp.id]))[str(lamp.id)] == [
        (str(rug.id), 0.75),
        (str(own.id), 1 / 3),
        (str(hose.id), 1e-9),
    ]  # exact floats, best first
    tie = sorted([hose.id, spade.id])
    assert await env.store.popular(limit=3) == [
        PopularItem(lamp.id, 5.5, home.id, "Home"),
        PopularItem(tie[0], 3.0, garden.id, "Garden"),
        PopularItem(tie[1], 3.0, garden.id, "Garden"),
    ]
    assert await env.store.popular(limit=2, category_ids=[garden.id, home.id]) == [
        PopularItem(lamp.id, 5.5, home.id, "Home"),
        PopularItem(tie[0], 3.0, garden.id, "Garden"),
        PopularItem(tie[1], 3.0, garden.id, "Garden"),
        PopularItem(rug.id, 2.25, home.id, "Home"),
    ]
    assert await env.store.popular(limit=1, category_ids=[garden.id]) == [PopularItem(tie[0], 3.0, garden.id, "Garden")]
    assert await env.store.popular(limit=5, category_ids=[]) == []

    second = _table([(rug, [(lamp, 0.25)])])
    await env.store.replace(FittedModel(second, popular[:1], at(120)))
    assert await env.store.built_at() == at(120)
    assert await env.store.neighbours([lamp.id, rug.id, spade.id]) == {str(rug.id): [(str(lamp.id), 0.25)]}
    assert [p.product_id for p in await env.store.popular(limit=10)] == [lamp.id]

    await env.store.replace_popular(popular[2:])
    assert await env.store.built_at() == at(120)  # the model stays
    assert await env.store.neighbours([rug.id]) == {str(rug.id): [(str(lamp.id), 0.25)]}
    assert {p.product_id for p in await env.store.popular(limit=10)} == {hose.id, spade.id, own.id}

    await env.store.replace(FittedModel(_table([]), [], at(180)))
    assert await env.store.built_at() is None
    assert await env.store.neighbours([rug.id]) == {}
    assert await env.store.popular(limit=10) == []


def _factors(products: list[Product], rank: int = 3) -> ItemFactors:
    vectors = [0.5 - i / 7 + 1e-7 * j for i in range(len(products)) for j in range(rank)]
    return ItemFactors(
        items=[str(p.id) for p in products],
        rank=rank,
        vectors=array("f", vectors),
        idf=array("d", [1 / (i + 3) for i in range(len(products))]),
        mean_length=2.5,
        regularization=20.0,
        alpha=3.0,
        bm25_k1=100.0,
        bm25_b=0.8,
    )


async def test_the_als_vectors_are_swapped_with_the_model_and_read_back_exactly(env: Env) -> None:
    w = await _world(env)
    lamp, rug, gone, spade, hose, own = w["products"]
    table = _table([(lamp, [(rug, 0.5)])])
    assert await env.store.factors() is None
    first = _factors([lamp, rug, gone])
    await env.store.replace(FittedModel(table, [], at(10), first))
    assert await env.store.factors() == first  # ids, float32 vectors and float64 values exact
    second = _factors([spade, hose], rank=2)
    await env.store.replace(FittedModel(table, [], at(20), second))
    assert await env.store.factors() == second
    await env.store.replace_popular([])
    assert await env.store.factors() == second  # popular items alone leave the model
    await env.store.replace(FittedModel(table, [], at(30)))
    assert await env.store.factors() is None  # a model without vectors has none


async def test_readers_never_see_half_a_model(env: Env) -> None:
    seller = await env.user("seller")
    category = await env.category("Many")
    products = await env.products(seller, category, *(f"P{i}" for i in range(60)))

    def model(score: float) -> dict[str, list[tuple[str, float]]]:
        return _table([(p, [(q, score) for q in products[i + 1 : i + 9]]) for i, p in enumerate(products[:-1])])

    old, new = model(1.0), model(2.0)
    await env.store.replace(FittedModel(old, [PopularScore(p.id, category.id, 1.0) for p in products], at(1)))
    ids = [p.id for p in products]
    snapshots: list[set[float]] = []
    done = asyncio.Event()

    async def read() -> None:
        while not done.is_set():
            lists = await env.store.neighbours(ids)
            scores = {score for pairs in lists.values() for _, score in pairs}
            assert len(lists) == len(products) - 1, "a reader saw part of a model"
            snapshots.append(scores)
            await asyncio.sleep(0)

    reader = asyncio.create_task(read())
    await env.store.replace(FittedModel(new, [PopularScore(p.id, category.id, 2.0) for p in products], at(2)))
    await asyncio.sleep(0.05)
    done.set()
    await reader
    assert snapshots and all(s in ({1.0}, {2.0}) for s in snapshots)
    assert snapshots[-1] == {2.0}


async def test_co_interactions_count_the_other_live_products_of_a_products_newest_users(env: Env) -> None:
    w = await _world(env)
    seller, buyer, other = w["users"]
    lamp, rug, gone, spade, hose, own = w["products"]

    # lamp: buyer's favorite (1) and other's good review (7); the cancelled order is no signal.
    both = await env.source.co_interactions(lamp.id, max_users=10, limit=10)
    assert both == CoInteractions(2, [(p, 1) for p in sorted([rug.id, spade.id, hose.id])])  # gone is withdrawn
    newest = await env.source.co_interactions(lamp.id, max_users=1, limit=10)
    assert newest == CoInteractions(1, [(p, 1) for p in sorted([spade.id, hose.id])])  # other only
    assert len((await env.source.co_interactions(lamp.id, max_users=10, limit=2)).counts) == 2
    assert await env.source.co_interactions(own.id, max_users=10, limit=10) == CoInteractions(0, [])
    assert await env.source.co_interactions(new_id(), max_users=10, limit=10) == CoInteractions(0, [])


async def test_active_users_newest_first(env: Env) -> None:
    w = await _world(env)
    seller, buyer, other = w["users"]

    assert await env.source.active_users(limit=5) == [other.id, buyer.id]  # seller has no signal
    assert await env.source.active_users(limit=1) == [other.id]


async def test_set_neighbours_replaces_one_list_within_the_model(env: Env) -> None:
    w = await _world(env)
    lamp, rug, gone, spade, hose, own = w["products"]

    await env.store.set_neighbours(rug.id, [(lamp.id, 0.5)])  # no model yet: the first refresh is due
    assert await env.store.neighbours([rug.id]) == {}
    assert await env.store.built_at() is None

    await env.store.replace(FittedModel(_table([(lamp, [(rug, 0.75)])]), [], at(60)))
    await env.store.set_neighbours(rug.id, [(hose.id, 0.5), (lamp.id, 0.25)])
    await env.store.set_neighbours(spade.id, [(hose.id, 1.0)])
    await env.store.set_neighbours(spade.id, [(lamp.id, 0.125)])  # again: replaced, not added

    assert await env.store.built_at() == at(60)  # still the model's build time
    assert await env.store.neighbours([lamp.id, rug.id, spade.id]) == {
        str(lamp.id): [(str(rug.id), 0.75)],
        str(rug.id): [(str(hose.id), 0.5), (str(lamp.id), 0.25)],
        str(spade.id): [(str(lamp.id), 0.125)],
    }


@pytest.fixture
def rankings(env: Env) -> Any:
    if env.kind == "memory":
        from adapters.memory.recommendations import MemoryRankingStore

        return MemoryRankingStore(env.uow.store)
    from adapters.sql.recommendations import SqlRankingStore

    return SqlRankingStore(env.store.db, insert_batch=2)


async def test_stored_rankings_are_fresh_until_a_newer_signal_or_model(env: Env, rankings: Any) -> None:
    w = await _world(env)
    seller, buyer, other = w["users"]
    lamp, rug, gone, spade, hose, own = w["products"]
    mine = [Ranked(spade.id, 0.5, "because you bought Rug"), Ranked(hose.id, 0.25, "popular right now")]
    assert await rankings.fresh(buyer.id) is None

    await rankings.put_many([(buyer.id, mine), (seller.id, []), (other.id, mine[:1])], at(20))
    assert await rankings.fresh(buyer.id) == mine
    assert await rankings.fresh(seller.id) == []
    await rankings.put_many([(other.id, mine[1:])], at(20))  # replaced, not added
    assert await rankings.fresh(other.id) == mine[1:]

    await env.favorite(buyer, spade, at(30))  # newer than the ranking: not fresh any more
    assert await rankings.fresh(buyer.id) is None
    await rankings.put_many([(buyer.id, mine[1:])], at(31))
    assert await rankings.fresh(buyer.id) == mine[1:]
    await env.review(buyer, hose, 2, at(32))  # any review counts (it hides the product)
    assert await rankings.fresh(buyer.id) is None

    await env.store.replace(FittedModel(_table([(lamp, [(rug, 0.5)])]), [], at(40)))  # a newer model
    assert await rankings.fresh(seller.id) is None
    await rankings.put_many([(seller.id, mine)], at(41))
    assert await rankings.fresh(seller.id) == mine


async def test_a_ranking_computed_earlier_never_replaces_one_computed_later(env: Env, rankings: Any) -> None:
    # Two feed jobs of one user racing: the one that read the interactions first may write last.
    w = await _world(env)
    _, buyer, _ = w["users"]
    _, _, _, spade, hose, _ = w["products"]
    newer = [Ranked(hose.id, 0.5, "popular right now")]
    older = [Ranked(spade.id, 0.5, "because you rated Spade highly")]

    await rankings.put_many([(buyer.id, newer)], at(20))
    await rankings.put_many([(buyer.id, older)], at(19))
    assert await rankings.fresh(buyer.id) == newer

    await rankings.put_many([(buyer.id, older)], at(21))  # computed later: replaces
    assert await rankings.fresh(buyer.id) == older
