"""Recommendations as a product feature: model refreshes, the personal feed and similar products.

A refresh (a scheduled job, or ``marketplace recommend refresh``) reads every interaction, fits
the item-to-item model in a worker thread (the event loop keeps serving requests meanwhile) and
swaps the neighbour lists and the popular items into the store in one transaction.

A feed request reads the caller's own recent interactions live, so a new favorite or order counts
at once without waiting for a refresh, and scores them against the stored neighbours
(``score_feed``, a few milliseconds). It never shows the caller's own listings, withdrawn
products, or products the caller bought (placed orders; a cancelled order no longer counts),
favorited or reviewed: they know those already, and a feed is for discovery. A short feed (a cold
start, a user whose items have few neighbours, an empty model on a fresh install) is filled with
popular items: first those of the categories the caller interacts with most, then overall.

Rankings are cached, in the ``feed:{user_id}`` namespace that the caller's own writes bump and
under the model's version (each refresh bumps ``recs``); similar products until the next refresh.
They are also computed ahead of requests (primed): for the most active users after every refresh,
and for the caller after each of their favorites, orders and reviews (``UpdateFeed``, a job the
write enqueues through the outbox). A read that finds no primed ranking (the job has not run yet)
computes it.

The feed is served as its rendered JSON body, cached in the same namespace and also under the
version of the catalog's ``listings`` namespace, which every product write bumps (withdrawal,
stock, price, a checkout, a cancellation): so a feed request is one cache read (from the process's
memory when warm), and a product withdrawn, sold out or bought meanwhile leaves the feed at once,
in every process (the tiered cache carries bumps over pub/sub). Rendering is one batched product
look-up from the cached ranking.

Between refreshes ``UpdateFeed`` also gives the touched products that few users know (new
products in particular, which the last refresh never saw) neighbours from live co-occurrence
counts, so a favorite of a product listed since the refresh already brings its related products.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

import anyio.to_thread
import msgspec
import polars as pl

from application import pagination
from application.cached_catalog import LISTINGS, feed_namespace
from application.caching import cached, struct_codec, versioned_key
from application.identity import Principal
from application.ports.cache import Cache
from application.ports.catalog import CatalogQueries
from application.ports.clock import Clock
from application.ports.recommendations import (
    FittedModel,
    Interaction,
    InteractionSource,
    NeighbourStore,
    PopularItem,
    PopularScore,
    RankingStore,
    RecentInteraction,
)
from application.recommendations.factors import FactorScorer
from application.recommendations.feed import FeedItem, UserInteraction, score_feed
from application.recommendations.model import (
    KIND_WEIGHTS,
    ModelConfig,
    decay_rate,
    fit_model,
    neighbour_table,
    popularity,
)
from application.recommendations.table import ItemFactors
from application.views.catalog import ProductSummary
from application.views.recommendations import Feed, Ranked, Recommendation, SimilarProduct, SimilarProducts
from domain.catalog import descendants
from domain.errors import NotFound

LIMIT_MIN, LIMIT_MAX, LIMIT_DEFAULT = 1, 50, 10
# The user's newest signals a feed is scored from: enough for taste, bounded per request.
RECENT_INTERACTIONS = 200
# Cached rankings hold a few more than the largest page, for products withdrawn meanwhile.
RANK_SIZE = LIMIT_MAX + 10
LOAD_BATCH = 500
# Similar products, popular lists and feeds: until a refresh or a write bumps their namespace
# (the TTL only bounds it); a refresh primes the feeds again.
RECS_TTL = 900.0
FEED_TTL = RECS_TTL
# A rendered feed: until the user's, the model's or the listings' namespace is bumped. The TTL
# bounds what bumps leave behind (a body per feed viewed since); a minute keeps a feed its user
# comes back to within it rendered once.
FEED_BODY_TTL = 60.0
# A refresh primes the feeds of this many of the most recently active users, so many at a time.
PRIME_USERS = 20_000
PRIME_CONCURRENCY = 8
PRIME_BATCH = 500
# Between refreshes, a touched product known to at most this many users gets its neighbours from
# live co-occurrence counts (a small query): it is new, or the model knows little about it;
# better known products keep the model's neighbours until the next refresh.
COLD_USERS = 20
RECS_NAMESPACE = "recs"
# The popular lists alone: refreshed every few minutes without touching the rankings built from
# them (their popular fill-ins may lag until the next model refresh or the user's next write).
POPULAR_NAMESPACE = "popular"
# "Popular right now" forgets faster than the model (half-life 365 days): a month.
POPULAR_HALF_LIFE_DAYS = 30.0
POPULAR_PER_CATEGORY = 100
POPULAR_OVERALL = 200
# Cold-start fill: popular items of the caller's strongest categories, this many of them.
FEED_CATEGORIES = 3
# A fallback segment's best score is put this far below the last score before it.
FALLBACK_SCALE = 0.9
POPULAR_NOW = "popular right now"
_BECAUSE = {
    "favorite": "because you favorited {}",
    "purchase": "because you bought {}",
    "review": "because you rated {} highly",
}
_RANKING = struct_codec(list[Ranked])
_FEED = struct_codec(Feed)
_POPULAR = struct_codec(list[PopularItem])
_FIT_SCHEMA = {"user": pl.String, "item": pl.String, "ts": pl.Float64, "weight": pl.Float64}
_LIVE_SCHEMA = {"item": pl.String, "category": pl.String}


class LoadedFactors:
    """The stored model's ALS vectors, loaded once per model in each process (not per ranking)."""

    def __init__(self) -> None:
        self._built_at: datetime | None = None
        self._scorer: FactorScorer | None = None
        self._lock = anyio.Lock()

    async def scorer(self, store: NeighbourStore) -> FactorScorer | None:
        """The scorer of the model stored now (one small read to tell whether it changed)."""
        built_at = await store.built_at()
        if built_at != self._built_at:
            async with self._lock:
                if built_at != self._built_at:
                    factors = await store.factors()
                    self._scorer = None if factors is None else await anyio.to_thread.run_sync(FactorScorer, factors)
                    self._built_at = built_at
        return self._scorer


@dataclass(frozen=True, slots=True)
class RecommendationDeps:
    source: InteractionSource
    store: NeighbourStore
    queries: CatalogQueries
    cache: Cache
    clock: Clock
    config: ModelConfig = field(default_factory=ModelConfig)
    # Rankings computed ahead, read when the cache misses (None: the cache alone keeps them).
    rankings: RankingStore | None = None
    factors: LoadedFactors = field(default_factory=LoadedFactors)


class ModelState(msgspec.Struct, frozen=True):
    built_at: float | None
    # No model yet although there is something to fit: a refresh should run now, not on schedule.
    refresh_due: bool


def _same(body: bytes) -> bytes:
    return body


def check_limit(limit: int) -> int:
    return pagination.check_limit(limit, maximum=LIMIT_MAX)


# -- refreshes ----------------------------------------------------------------------------------


def _batch_frames(rows: list[Interaction]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One batch as the fit's ``user, item, ts, weight`` frame and the live ``item, category`` pairs."""
    interactions = pl.DataFrame(
        {
            "user": [str(row.user_id) for row in rows],
            "item": [str(row.product_id) for row in rows],
            "ts": [row.at.timestamp() for row in rows],
            "weight": [KIND_WEIGHTS[row.kind] for row in rows],
        },
        schema=_FIT_SCHEMA,
    )
    live = pl.DataFrame(
        {
            "item": [str(row.product_id) for row in rows if row.live],
            # null for an uncategorised product: it is popular among the uncategorised and overall
            "category": [str(row.category_id) if row.category_id else None for row in rows if row.live],
        },
        schema=_LIVE_SCHEMA,
    ).unique("item")
    return interactions, live


async def _load(source: InteractionSource) -> tuple[pl.DataFrame, pl.DataFrame]:
    """All interactions, converted batch by batch in a thread (500k rows take about a second).

    Small batches: the driver builds each batch's rows on the event loop, and 500 rows keep that
    to a few milliseconds at a time (measured: 20,000 rows stalled it ~100 ms, 500 rows ~6 ms).
    """
    interactions: list[pl.DataFrame] = []
    live: list[pl.DataFrame] = []
    async for rows in source.all_interactions(batch_size=LOAD_BATCH):
        frame, products = await anyio.to_thread.run_sync(_batch_frames, rows)
        interactions.append(frame)
        live.append(products)
    if not interactions:
        return pl.DataFrame(schema=_FIT_SCHEMA), pl.DataFrame(schema=_LIVE_SCHEMA)
    return pl.concat(interactions), pl.concat(live).unique("item")


def _popular_scores(interactions: pl.DataFrame, live: pl.DataFrame, now: float) -> list[PopularScore]:
    """Recent popularity of live products: the best of each category and the best overall."""
    alive = interactions.join(live.select("item"), on="item", how="semi")
    if alive.is_empty():
        return []
    per_category = popularity(
        alive, now=now, half_life_days=POPULAR_HALF_LIFE_DAYS, category=live, top_n=POPULAR_PER_CATEGORY
    )
    overall = popularity(alive, now=now, half_life_days=POPULAR_HALF_LIFE_DAYS, top_n=POPULAR_OVERALL)
    chosen = pl.concat(
        [
            per_category.select("item", "category", "score"),
            overall.join(live, on="item").select("item", "category", "score"),
        ]
    ).unique("item", keep="first", maintain_order=True)
    return [
        PopularScore(uuid.UUID(item), uuid.UUID(category) if category else None, float(score))
        for item, category, score in chosen.iter_rows()
    ]


def _build(
    interactions: pl.DataFrame, live: pl.DataFrame, config: ModelConfig, now: float
) -> tuple[pl.DataFrame, ItemFactors | None, list[PopularScore]]:
    """The neighbour table (withdrawn products kept as sources, never as neighbours), the ALS
    item vectors (withdrawn products keep theirs: a ranking hides them) and popularity."""
    model = fit_model(interactions, config, now=now)
    neighbours = model.table.filter(pl.col("neighbour").is_in(live.get_column("item").implode()))
    return neighbours, model.factors, _popular_scores(interactions, live, now)


class RefreshRecommendations:
    """Refit the model on every interaction and swap it in, with fresh popular items.

    The fit runs in a worker thread: at 100k products and 500k interactions it takes seconds of
    CPU that must not stall requests.
    """

    def __init__(self, deps: RecommendationDeps) -> None:
        self.deps = deps

    async def execute(self) -> dict[str, Any]:
        started = time.perf_counter()
        built_at = self.deps.clock.now()
        interactions, live = await _load(self.deps.source)
        loaded = time.perf_counter()
        neighbours, factors, popular = await anyio.to_thread.run_sync(
            partial(_build, interactions, live, self.deps.config, built_at.timestamp())
        )
        table = await anyio.to_thread.run_sync(neighbour_table, neighbours)
        fitted = time.perf_counter()
        await self.deps.store.replace(FittedModel(table, popular, built_at, factors))
        await self.deps.cache.bump(POPULAR_NAMESPACE)
        await self.deps.cache.bump(RECS_NAMESPACE)
        stored = time.perf_counter()
        primed = await prime_feeds(self.deps)
        return {
            "interactions": interactions.height,
            "products": neighbours.get_column("item").n_unique(),
            "neighbours": neighbours.height,
            "products_with_vectors": len(factors.items) if factors is not None else 0,
            "popular": len(popular),
            "load_seconds": round(loaded - started, 3),
            "fit_seconds": round(fitted - loaded, 3),
            "store_seconds": round(stored - fitted, 3),
            "primed_feeds": primed,
            "prime_seconds": round(time.perf_counter() - stored, 3),
        }


class RefreshPopularItems:
    """Recompute the popular items (cold starts and fills) between model refreshes.

    Cached popular lists follow at once; rankings already computed keep their fill-ins until the
    next model refresh (which primes them again) or the user's next write."""

    def __init__(self, deps: RecommendationDeps) -> None:
        self.deps = deps

    async def execute(self) -> dict[str, Any]:
        started = time.perf_counter()
        now = self.deps.clock.now().timestamp()
        interactions, live = await _load(self.deps.source)
        popular = await anyio.to_thread.run_sync(_popular_scores, interactions, live, now)
        await self.deps.store.replace_popular(popular)
        await self.deps.cache.bump(POPULAR_NAMESPACE)
        return {
            "interactions": interactions.height,
            "popular": len(popular),
            "seconds": round(time.perf_counter() - started, 3),
        }


class GetModelState:
    """When the model was built (for ``/metrics``), and whether a first refresh is due."""

    def __init__(self, deps: RecommendationDeps) -> None:
        self.deps = deps

    async def execute(self) -> ModelState:
        built_at = await self.deps.store.built_at()
        if built_at is not None:
            return ModelState(built_at=built_at.timestamp(), refresh_due=False)
        return ModelState(built_at=None, refresh_due=await self.deps.source.any_interactions())


# -- reads --------------------------------------------------------------------------------------


def _merge(segments: Sequence[Sequence[Ranked]], skip: Collection[uuid.UUID], size: int) -> list[Ranked]:
    """The segments one after the other (each best first), without repeats or ``skip``, up to ``size``.

    Later segments are fallbacks on another scale (popularity, not similarity): each is scaled to
    stay below the last score before it, so the whole list is sorted by score.
    """
    merged: list[Ranked] = []
    taken = set(skip)
    for segment in segments:
        kept: list[Ranked] = []
        for entry in segment:
            if len(merged) + len(kept) >= size:
                break
            if entry.product_id not in taken:
                taken.add(entry.product_id)
                kept.append(entry)
        if not kept:
            continue
        top = kept[0].score
        if merged and top > 0:
            factor = min(1.0, FALLBACK_SCALE * merged[-1].score / top)
            kept = [Ranked(entry.product_id, entry.score * factor, entry.reason) for entry in kept]
        merged.extend(kept)
    return merged


async def _hydrate(
    queries: CatalogQueries,
    ranking: Sequence[Ranked],
    limit: int,
    *,
    not_sold_by: uuid.UUID | None = None,
    in_stock: bool = False,
) -> list[tuple[Ranked, ProductSummary]]:
    """The first ``limit`` ranked products that are live (not sold by ``not_sold_by``, in stock
    if asked), looked up in one batched query (a second one only when some of the first batch
    have gone)."""
    found: list[tuple[Ranked, ProductSummary]] = []
    start = 0
    while len(found) < limit and start < len(ranking):
        chunk = ranking[start : start + limit - len(found) + 5]
        start += len(chunk)
        summaries = await queries.product_summaries([entry.product_id for entry in chunk])
        for entry in chunk:
            summary = summaries.get(entry.product_id)
            if summary is not None and summary.seller.id != not_sold_by and (summary.stock > 0 or not in_stock):
                found.append((entry, summary))
    return found[:limit]


async def _popular(deps: RecommendationDeps, category_id: uuid.UUID | None = None) -> list[PopularItem]:
    """The best ``RANK_SIZE`` popular items overall, or of a category and each of its
    sub-categories (as ``category_id`` filters listings), best first; cached until a refresh."""

    async def load() -> list[PopularItem]:
        if category_id is None:
            return await deps.store.popular(limit=RANK_SIZE)
        tree = descendants(await deps.queries.category_parents(), category_id)
        return await deps.store.popular(limit=RANK_SIZE, category_ids=sorted(tree))

    key = f"popular:{category_id or 'all'}"
    return await cached(deps.cache, key, RECS_TTL, load, *_POPULAR, namespace=POPULAR_NAMESPACE)


def _strongest_categories(
    recent: Sequence[RecentInteraction], now: float, half_life_days: float | None
) -> list[uuid.UUID]:
    """The categories of the user's interactions, by decayed weight, strongest first."""
    rate = decay_rate(half_life_days)
    weights: dict[uuid.UUID, float] = {}
    for interaction in recent:
        age = max(now - interaction.at.timestamp(), 0.0)
        weight = KIND_WEIGHTS.get(interaction.kind, 0.0) * math.exp(-rate * age)
        if interaction.category_id is not None:  # an uncategorised product adds to no category
            weights[interaction.category_id] = weights.get(interaction.category_id, 0.0) + weight
    return [category for category, _ in sorted(weights.items(), key=lambda kv: (-kv[1], kv[0]))]


def _popular_reason(item: PopularItem) -> str:
    return f"popular in {item.category_name}" if item.category_name else POPULAR_NOW


def _because(entry: FeedItem, names: dict[str, str]) -> str:
    name = names.get(entry.because_item or "", "something you liked")
    return _BECAUSE.get(entry.because_kind, "because you liked {}").format(name)


class GetFeed:
    """Your personal feed, best first.

    Scored from your newest favorites, purchases and good reviews (a new favorite or order shows
    within seconds) against everyone's co-occurrences, refreshed every 15 minutes. Never your
    own listings, withdrawn or sold-out products, or what you bought, favorited or reviewed. New
    users and short feeds get popular items: of your strongest categories first, then overall.
    `reason` says why each item is there; `score` sorts the list.
    """

    def __init__(self, deps: RecommendationDeps) -> None:
        self.deps = deps

    async def _key(self) -> str:
        # Keyed by the model's version too, so a refresh reaches every cached feed at once.
        return f"ranking:m{await self.deps.cache.version(RECS_NAMESPACE)}"

    async def execute(self, principal: Principal, *, limit: int = LIMIT_DEFAULT) -> Feed:
        return _FEED[1](await self.encoded(principal, limit=limit))

    async def encoded(self, principal: Principal, *, limit: int = LIMIT_DEFAULT) -> bytes:
        """The feed as its JSON body (an encoded ``Feed``), rendered once and then cached."""
        check_limit(limit)
        user_id = principal.id
        cache = self.deps.cache

        async def render() -> bytes:
            ranking = await self.ranking(user_id)
            found = await _hydrate(self.deps.queries, ranking, limit, not_sold_by=user_id, in_stock=True)
            items = [Recommendation(product=summary, score=r.score, reason=r.reason) for r, summary in found]
            return _FEED[0](Feed(items=items))

        # The body shows products as they are now: it lives under the version of the listings
        # too, which every product write bumps (and the model's: a refresh re-ranks every feed).
        key = f"body:{limit}:m{await cache.version(RECS_NAMESPACE)}:l{await cache.version(LISTINGS)}"
        return await cached(cache, key, FEED_BODY_TTL, render, _same, _same, namespace=feed_namespace(user_id))

    async def ranking(self, user_id: uuid.UUID) -> list[Ranked]:
        """The user's cached ranking; else the stored one if still fresh; else computed now."""

        async def load() -> list[Ranked]:
            stored = await self.deps.rankings.fresh(user_id) if self.deps.rankings is not None else None
            return stored if stored is not None else await self.rank(user_id)

        key = await self._key()
        return await cached(self.deps.cache, key, FEED_TTL, load, *_RANKING, namespace=feed_namespace(user_id))

    async def prime(self, user_id: uuid.UUID, *, save: bool = True, cache: bool = True) -> list[Ranked]:
        """Compute the user's ranking now, cache it where the next request looks (``cache``) and
        store it (``save``) for when the cache has lost it.

        The versions and the time are taken before the interactions are read: a write that
        commits meanwhile bumps the user's namespace and is newer than the stored ranking, so
        this ranking is never served in place of one that includes it.
        """
        key = await versioned_key(self.deps.cache, feed_namespace(user_id), await self._key()) if cache else None
        computed_at = self.deps.clock.now()
        ranking = await self.rank(user_id)
        if key is not None:
            await self.deps.cache.set(key, _RANKING[0](ranking), FEED_TTL)
        if save and self.deps.rankings is not None:
            await self.deps.rankings.put_many([(user_id, ranking)], computed_at)
        return ranking

    async def rank(self, user_id: uuid.UUID) -> list[Ranked]:
        """Up to ``RANK_SIZE`` product ids for the user, with scores and reasons (uncached)."""
        deps = self.deps
        now = deps.clock.now().timestamp()
        recent = await deps.source.recent_interactions(user_id, limit=RECENT_INTERACTIONS)
        neighbours = await deps.store.neighbours({r.product_id for r in recent}) if recent else {}
        interactions = [UserInteraction(str(r.product_id), r.kind, r.at.timestamp()) for r in recent]
        scorer = await deps.factors.scorer(deps.store) if recent and deps.config.als_weight > 0 else None
        # Twice the ranking: the hidden ones (bought or favorited long ago, own) are dropped below.
        scored = score_feed(
            interactions,
            neighbours,
            (),
            2 * RANK_SIZE,
            now,
            deps.config.half_life_days,
            factors=scorer,
            factor_weight=deps.config.als_weight,
        )
        categories = _strongest_categories(recent, now, deps.config.half_life_days)[:FEED_CATEGORIES]
        in_categories: list[PopularItem] = []
        for category in categories:
            in_categories.extend(await _popular(deps, category))
        in_categories.sort(key=lambda item: (-item.score, item.product_id))
        overall = await _popular(deps)
        names = {str(r.product_id): r.name for r in recent}
        personal = [Ranked(uuid.UUID(entry.item), entry.score, _because(entry, names)) for entry in scored]
        candidates = {entry.product_id for entry in personal}
        candidates.update(p.product_id for p in in_categories)
        candidates.update(p.product_id for p in overall)
        hidden = await deps.source.hidden_among(user_id, candidates) if candidates else set()
        return _merge(
            [
                personal,
                [Ranked(p.product_id, p.score, _popular_reason(p)) for p in in_categories],
                [Ranked(p.product_id, p.score, POPULAR_NOW) for p in overall],
            ],
            hidden,
            RANK_SIZE,
        )


class GetSimilarProducts:
    """Products often favorited or bought together with this one, best first.

    From the model's neighbours of the product; when it has none or too few (a new or rarely
    touched product), popular products of the same category (sub-categories included) fill in. Withdrawn products never
    appear; an unknown or withdrawn product is 404.
    """

    def __init__(self, deps: RecommendationDeps) -> None:
        self.deps = deps

    async def execute(self, product_id: uuid.UUID, *, limit: int = LIMIT_DEFAULT) -> SimilarProducts:
        check_limit(limit)

        async def load() -> list[Ranked]:
            return await self.rank(product_id)

        ranking = await cached(
            self.deps.cache, f"similar:{product_id}", RECS_TTL, load, *_RANKING, namespace=RECS_NAMESPACE
        )
        found = await _hydrate(self.deps.queries, [Ranked(product_id, 0.0), *ranking], limit + 1)
        if not found or found[0][0].product_id != product_id:
            raise NotFound("No such product.", field="product_id")
        return SimilarProducts(items=[SimilarProduct(product=summary, score=r.score) for r, summary in found[1:]])

    async def rank(self, product_id: uuid.UUID) -> list[Ranked]:
        product = (await self.deps.queries.product_summaries([product_id])).get(product_id)
        if product is None:
            raise NotFound("No such product.", field="product_id")
        key = str(product_id)
        neighbours = (await self.deps.store.neighbours([product_id])).get(key, [])
        similar = [Ranked(uuid.UUID(neighbour), score) for neighbour, score in neighbours if neighbour != key]
        # An uncategorised product fills up with popular products overall.
        category = product.category.id if product.category is not None else None
        popular = await _popular(self.deps, category) if len(similar) < RANK_SIZE else []
        return _merge([similar, [Ranked(p.product_id, p.score) for p in popular]], {product_id}, RANK_SIZE)


async def _prime_into(
    feed: GetFeed, user_id: uuid.UUID, limiter: anyio.Semaphore, out: list[tuple[uuid.UUID, list[Ranked]]]
) -> None:
    async with limiter:
        out.append((user_id, await feed.prime(user_id, save=False)))


async def prime_feeds(deps: RecommendationDeps) -> int:
    """Prime the feeds of the ``PRIME_USERS`` most recently active users, a few at a time,
    storing them in batches."""
    users = await deps.source.active_users(limit=PRIME_USERS)
    feed = GetFeed(deps)
    for start in range(0, len(users), PRIME_BATCH):
        batch = users[start : start + PRIME_BATCH]
        computed_at = deps.clock.now()
        rankings: list[tuple[uuid.UUID, list[Ranked]]] = []
        limiter = anyio.Semaphore(PRIME_CONCURRENCY)
        async with anyio.create_task_group() as group:
            for user_id in batch:
                group.start_soon(_prime_into, feed, user_id, limiter, rankings)
        if deps.rankings is not None:
            await deps.rankings.put_many(rankings, computed_at)
    return len(users)


class UpdateFeed:
    """After a user's favorite, order or review (a job): neighbours for the little-known products
    they touched, from live co-occurrence counts, then their feed primed.

    Idempotent (it recomputes from what is stored), so a retried or duplicated job is harmless.
    """

    def __init__(self, deps: RecommendationDeps) -> None:
        self.deps = deps

    async def execute(self, user_id: uuid.UUID, product_ids: Collection[uuid.UUID]) -> str:
        deps = self.deps
        updated = 0
        for product_id in sorted(set(product_ids)):
            # One user more than the threshold: enough to tell a well-known product, cheaply.
            co = await deps.source.co_interactions(product_id, max_users=COLD_USERS + 1, limit=deps.config.top_n)
            if 0 < co.users <= COLD_USERS and co.counts:
                # The share of the product's users who also took each other product.
                await deps.store.set_neighbours(product_id, [(other, n / co.users) for other, n in co.counts])
                await deps.cache.delete(await versioned_key(deps.cache, RECS_NAMESPACE, f"similar:{product_id}"))
                updated += 1
        # Stored first, then a new version: a feed rendered meanwhile from the ranking stored before
        # (a favorite or review taken back leaves no newer signal to refuse it) is thrown away, and
        # every process reads this one (or a later job's: the store keeps the latest computed).
        await GetFeed(deps).prime(user_id, cache=False)
        await deps.cache.bump(feed_namespace(user_id))
        return f"feed primed, {updated} products given live neighbours"
