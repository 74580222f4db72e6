"""Recommendation ports: where the positive signals come from, and where the fitted model lives.

``InteractionSource`` reads favorites, purchases (lines of placed orders) and good reviews, for a
whole refit and for one user per feed request. ``NeighbourStore`` holds what a refresh computed:
each product's neighbour list and the popular items; a refresh swaps both in one transaction so a
request never sees half of one model and half of another.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, Protocol

from application.recommendations.feed import InteractionKind
from application.recommendations.table import ItemFactors as ItemFactors  # re-exported: the port's own types
from application.recommendations.table import NeighbourTable as NeighbourTable
from application.views.recommendations import Ranked

# A review counts as a positive signal from this rating up (1–5 stars).
GOOD_REVIEW_RATING = 4


class Interaction(NamedTuple):
    """One positive signal, as a refit reads it."""

    user_id: uuid.UUID
    product_id: uuid.UUID
    kind: InteractionKind
    at: datetime
    category_id: uuid.UUID | None  # None: an uncategorised product
    # False when the product is withdrawn: it still links its users' other items in the model,
    # but is never recommended.
    live: bool


class RecentInteraction(NamedTuple):
    """One of a user's own signals, with what a feed needs to explain itself."""

    product_id: uuid.UUID
    kind: InteractionKind
    at: datetime
    category_id: uuid.UUID | None  # None: an uncategorised product
    name: str


class PopularScore(NamedTuple):
    """A refresh's popularity of a live product (written to the store)."""

    product_id: uuid.UUID
    category_id: uuid.UUID | None  # None: an uncategorised product
    score: float


class PopularItem(NamedTuple):
    """A stored popular product, read back with its category's name."""

    product_id: uuid.UUID
    score: float
    category_id: uuid.UUID | None  # None: an uncategorised product
    category_name: str | None


class CoInteractions(NamedTuple):
    """How many users touched a product, and the counts of the other products they touched."""

    users: int
    counts: list[tuple[uuid.UUID, int]]


class InteractionSource(Protocol):
    def all_interactions(self, *, batch_size: int = 20_000) -> AsyncIterator[list[Interaction]]:
        """Every favorite (weight 1), line of a placed order (weight 2) and review rated
        ``GOOD_REVIEW_RATING`` or more (weight 1), in batches, in no particular order. Lines of
        buyers who deleted their account have no buyer any more and are left out."""
        ...

    async def recent_interactions(self, user_id: uuid.UUID, *, limit: int = 200) -> list[RecentInteraction]:
        """The user's newest ``limit`` signals of the same three kinds, newest first."""
        ...

    async def hidden_among(self, user_id: uuid.UUID, product_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
        """Those of ``product_ids`` a feed must not show the user: their own listings, withdrawn
        products, and what they bought (placed orders), favorited or reviewed (any rating)."""
        ...

    async def any_interactions(self) -> bool:
        """Whether there is anything to fit a model on."""
        ...

    async def co_interactions(self, product_id: uuid.UUID, *, max_users: int, limit: int) -> CoInteractions:
        """Live co-occurrence counts of a product: of its newest ``max_users`` users (the same three
        signals), how many also touched each other live product, the ``limit`` largest counts first
        (ties by product id)."""
        ...

    async def active_users(self, *, limit: int) -> list[uuid.UUID]:
        """The ``limit`` users with the newest signals, newest first (whose feeds a refresh primes)."""
        ...


@dataclass(frozen=True, slots=True)
class FittedModel:
    """What one refresh computed, stored and replaced as a whole."""

    neighbours: NeighbourTable  # each product's neighbours, best first
    popular: Sequence[PopularScore]
    built_at: datetime
    factors: ItemFactors | None = None  # the ALS item vectors; None: the model has none


class NeighbourStore(Protocol):
    async def replace(self, model: FittedModel) -> None:
        """Swap in a new model in one transaction; readers see the old one until it commits."""
        ...

    async def factors(self) -> ItemFactors | None:
        """The stored model's ALS item vectors; None when it has none (or there is no model)."""
        ...

    async def replace_popular(self, popular: Sequence[PopularScore]) -> None:
        """Swap in new popular items (in one transaction), keeping the neighbours."""
        ...

    async def neighbours(self, product_ids: Collection[uuid.UUID]) -> dict[str, list[tuple[str, float]]]:
        """Each known product's neighbours, best first, keyed and listed by the product id's
        canonical string (the form ``score_feed`` and the model use; products without a row are
        absent)."""
        ...

    async def popular(self, *, limit: int, category_ids: Sequence[uuid.UUID] | None = None) -> list[PopularItem]:
        """The best ``limit`` popular items overall, or the best ``limit`` of each given
        category; best first (ties by product id)."""
        ...

    async def built_at(self) -> datetime | None:
        """When the stored model was built; None when there is none (a fresh install)."""
        ...

    async def set_neighbours(self, product_id: uuid.UUID, neighbours: Sequence[tuple[uuid.UUID, float]]) -> None:
        """Replace one product's neighbour list (best first) between refreshes, as part of the
        stored model (stamped with its ``built_at()``); the next refresh replaces it with the
        rest. Without a model it does nothing: a fresh install's first refresh is due at once
        (``GetModelState``), and a row written before it would postpone it."""
        ...


class RankingStore(Protocol):
    """Feed rankings computed ahead of requests, kept until recomputed."""

    async def put_many(self, rankings: Sequence[tuple[uuid.UUID, list[Ranked]]], computed_at: datetime) -> None:
        """Store (replace) these users' rankings, computed from what was committed at ``computed_at``."""
        ...

    async def fresh(self, user_id: uuid.UUID) -> list[Ranked] | None:
        """The user's stored ranking, unless a signal of theirs is newer than it (a favorite, an
        order placed or cancelled, a review written or edited) or the model is: then None."""
        ...
