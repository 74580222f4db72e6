"""In-memory interactions and model store: the twins of ``adapters.sql.recommendations``.

They read the memory tables (``favorites``, ``orders`` with their lines, ``reviews``,
``products``, ``categories``) and keep the model in ``item_neighbours`` (product id string →
neighbour list) and ``popular_items`` (product id → ``PopularScore``). Writes take the store's
lock, so no unit of work can roll the model back by restoring an older snapshot.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Collection, Sequence
from datetime import datetime
from typing import Any

from adapters.memory.store import MemoryStore
from application.ports.recommendations import (
    GOOD_REVIEW_RATING,
    CoInteractions,
    FittedModel,
    Interaction,
    ItemFactors,
    PopularItem,
    PopularScore,
    RecentInteraction,
)
from application.recommendations.feed import InteractionKind
from application.views.recommendations import Ranked
from domain.orders import OrderStatus

_BUILT_AT = "built_at"
_FACTORS = "factors"


class MemoryInteractionSource:
    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    def _signals(self) -> list[tuple[uuid.UUID, uuid.UUID, InteractionKind, datetime]]:
        """(user, product, kind, time) of every favorite, placed purchase and good review."""
        tables = self.store.tables
        signals: list[tuple[uuid.UUID, uuid.UUID, InteractionKind, datetime]] = [
            (f.user_id, f.product_id, "favorite", f.created_at) for f in tables.get("favorites", {}).values()
        ]
        for order in tables.get("orders", {}).values():
            if order.status is OrderStatus.PLACED and order.buyer_id is not None:
                signals.extend((order.buyer_id, line.product_id, "purchase", order.created_at) for line in order.lines)
        signals.extend(
            (r.author_id, r.product_id, "review", r.created_at)
            for r in tables.get("reviews", {}).values()
            if r.rating >= GOOD_REVIEW_RATING
        )
        return signals

    async def all_interactions(self, *, batch_size: int = 20_000) -> AsyncIterator[list[Interaction]]:
        products = self.store.table("products")
        rows = [
            Interaction(user, product, kind, at, products[product].category_id, products[product].withdrawn_at is None)
            for user, product, kind, at in self._signals()
        ]
        for start in range(0, len(rows), batch_size):
            yield rows[start : start + batch_size]

    async def recent_interactions(self, user_id: uuid.UUID, *, limit: int = 200) -> list[RecentInteraction]:
        products = self.store.table("products")
        mine = [(p, k, at) for u, p, k, at in self._signals() if u == user_id]
        mine.sort(key=lambda s: (-s[2].timestamp(), s[0], s[1]))
        return [
            RecentInteraction(product, kind, at, products[product].category_id, products[product].name)
            for product, kind, at in mine[:limit]
        ]

    async def hidden_among(self, user_id: uuid.UUID, product_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
        wanted = set(product_ids)
        products = self.store.table("products")
        hidden = {i for i in wanted if i in products and (products[i].seller_id == user_id or products[i].withdrawn_at)}
        tables = self.store.tables
        hidden.update(f.product_id for f in tables.get("favorites", {}).values() if f.user_id == user_id)
        hidden.update(r.product_id for r in tables.get("reviews", {}).values() if r.author_id == user_id)
        for order in tables.get("orders", {}).values():
            if order.buyer_id == user_id and order.status is OrderStatus.PLACED:
                hidden.update(line.product_id for line in order.lines)
        return hidden & wanted

    async def any_interactions(self) -> bool:
        return bool(self._signals())

    async def co_interactions(self, product_id: uuid.UUID, *, max_users: int, limit: int) -> CoInteractions:
        signals = self._signals()
        newest: dict[uuid.UUID, datetime] = {}
        for user, product, _, at in signals:
            if product == product_id and (user not in newest or at > newest[user]):
                newest[user] = at
        users = set(sorted(newest, key=lambda u: (-newest[u].timestamp(), u))[:max_users])
        products = self.store.table("products")
        touched = {(u, p) for u, p, _, _ in signals if u in users and p != product_id}
        counts: dict[uuid.UUID, int] = {}
        for _, product in touched:
            if product in products and products[product].withdrawn_at is None:
                counts[product] = counts.get(product, 0) + 1
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
        return CoInteractions(len(users), ranked)

    async def active_users(self, *, limit: int) -> list[uuid.UUID]:
        newest: dict[uuid.UUID, datetime] = {}
        for user, _, _, at in self._signals():
            if user not in newest or at > newest[user]:
                newest[user] = at
        return sorted(newest, key=lambda u: (-newest[u].timestamp(), u))[:limit]


class MemoryNeighbourStore:
    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    def _model(self) -> dict[str, Any]:
        return self.store.table("item_neighbours")

    async def replace(self, model: FittedModel) -> None:
        lookup = dict(model.neighbours.rows())
        async with self.store.lock:
            stored = self._model()
            stored.clear()
            stored.update(lookup)
            meta = self.store.table("model_meta")
            if lookup:
                meta[_BUILT_AT] = model.built_at
            else:
                meta.pop(_BUILT_AT, None)
            meta[_FACTORS] = model.factors
            self._set_popular(model.popular)

    async def factors(self) -> ItemFactors | None:
        value: ItemFactors | None = self.store.table("model_meta").get(_FACTORS)
        return value

    async def replace_popular(self, popular: Sequence[PopularScore]) -> None:
        async with self.store.lock:
            self._set_popular(popular)

    def _set_popular(self, popular: Sequence[PopularScore]) -> None:
        table = self.store.table("popular_items")
        table.clear()
        table.update({item.product_id: item for item in popular})

    async def neighbours(self, product_ids: Collection[uuid.UUID]) -> dict[str, list[tuple[str, float]]]:
        model = self._model()
        keys = {str(product_id) for product_id in product_ids}
        return {key: list(model[key]) for key in keys if key in model}

    async def popular(self, *, limit: int, category_ids: Sequence[uuid.UUID] | None = None) -> list[PopularItem]:
        categories = self.store.table("categories")
        rows = sorted(self.store.table("popular_items").values(), key=lambda p: (-p.score, p.product_id))
        if category_ids is None:
            chosen = rows[:limit]
        else:
            wanted = set(category_ids)
            taken: dict[uuid.UUID, int] = {}
            chosen = []
            for row in rows:
                if row.category_id in wanted and taken.get(row.category_id, 0) < limit:
                    taken[row.category_id] = taken.get(row.category_id, 0) + 1
                    chosen.append(row)
        return [
            PopularItem(
                p.product_id,
                p.score,
                p.category_id,
                categories[p.category_id].name if p.category_id is not None else None,
            )
            for p in chosen
        ]

    async def built_at(self) -> datetime | None:
        value: datetime | None = self.store.table("model_meta").get(_BUILT_AT)
        return value

    async def set_neighbours(self, product_id: uuid.UUID, neighbours: Sequence[tuple[uuid.UUID, float]]) -> None:
        async with self.store.lock:
            if _BUILT_AT in self.store.table("model_meta"):  # else the first refresh is due now
                self._model()[str(product_id)] = [(str(item), float(score)) for item, score in neighbours]


class MemoryRankingStore:
    """``feed_rankings`` in memory: user id → (computed at, ranking)."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    async def put_many(self, rankings: Sequence[tuple[uuid.UUID, list[Ranked]]], computed_at: datetime) -> None:
        async with self.store.lock:
            table = self.store.table("feed_rankings")
            for user_id, ranking in rankings:
                if user_id not in table or table[user_id][0] <= computed_at:  # never an older computation
                    table[user_id] = (computed_at, list(ranking))

    async def fresh(self, user_id: uuid.UUID) -> list[Ranked] | None:
        stored = self.store.table("feed_rankings").get(user_id)
        if stored is None:
            return None
        computed_at, ranking = stored
        tables = self.store.tables
        newer: list[datetime] = [f.created_at for f in tables.get("favorites", {}).values() if f.user_id == user_id]
        newer += [o.updated_at for o in tables.get("orders", {}).values() if o.buyer_id == user_id]
        newer += [r.updated_at for r in tables.get("reviews", {}).values() if r.author_id == user_id]
        built_at = self.store.table("model_meta").get(_BUILT_AT)
        stale = any(at >= computed_at for at in newer) or (built_at is not None and built_at > computed_at)
        return None if stale else list(ranking)
