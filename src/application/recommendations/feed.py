"""Per-request feed scoring from a user's interactions and the fitted neighbour table.

The neighbour sum is pure Python on purpose: a request touches a few hundred items and a few thousand
neighbour entries, so dictionaries beat any array library's call overhead (< 10 ms for 200
interactions × 50 neighbours). The ALS term is one small solve and one matrix-vector product.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from application.recommendations.factors import FactorScorer, UserFactor, term_scale
from application.recommendations.model import DEFAULT_HALF_LIFE_DAYS, KIND_WEIGHTS, decay_rate

InteractionKind = Literal["favorite", "purchase", "review"]
ReasonKind = Literal["favorite", "purchase", "review", "popular"]


@dataclass(frozen=True, slots=True)
class UserInteraction:
    """One positive signal: a favorite, a purchase or a good review of ``item`` at unix time ``ts``."""

    item: str
    kind: InteractionKind
    ts: float


@dataclass(frozen=True, slots=True)
class FeedItem:
    """A recommended item and why: the interacted item that contributed most (None when popular)."""

    item: str
    score: float
    because_item: str | None
    because_kind: ReasonKind


def score_feed(
    interactions: Sequence[UserInteraction],
    neighbours: Mapping[str, Sequence[tuple[str, float]]],
    exclude: Collection[str],
    limit: int,
    now: float,
    half_life_days: float | None = DEFAULT_HALF_LIFE_DAYS,
    factors: FactorScorer | None = None,
    factor_weight: float = 0.0,
) -> list[FeedItem]:
    """The user's top ``limit`` items: Σ over interacted items of decayed affinity × neighbour score.

    With ``factors`` (and a positive ``factor_weight``) the score is the sum of two terms, each
    divided by its total over all items so they weigh alike whatever their scales: the neighbour
    sum, and ``factor_weight`` times the user's ALS scores (their vector solved from the same
    affinities, see ``factors``). Never returns an excluded or already-interacted item. Ties break
    on the item id, and the "because" item on (largest contribution, smallest id), so the output
    depends only on the inputs.
    """
    if limit <= 0:
        return []
    affinity, reason = _affinities(interactions, now, half_life_days)
    blocked = set(exclude)
    blocked.update(interaction.item for interaction in interactions)
    sources = sorted(affinity)  # a fixed summation order keeps float scores, hence ties, reproducible
    scores: dict[str, float] = {}
    total = 0.0
    for source in sources:
        weight = affinity[source]
        for neighbour, similarity in neighbours.get(source, ()):
            total += weight * similarity
            if neighbour not in blocked:
                scores[neighbour] = scores.get(neighbour, 0.0) + weight * similarity
    user = factors.fold_in(affinity) if factors is not None and factor_weight > 0 else None
    if factors is None or user is None:
        best = heapq.nsmallest(limit, ((-score, item) for item, score in scores.items() if score > 0.0))
        return _explained(best, sources, affinity, reason, neighbours)
    predicted = factors.scores(user)
    scale = term_scale(float(np.abs(predicted).sum()), factor_weight)
    neighbour_scale = term_scale(total)
    dense = predicted * scale
    outside: dict[str, float] = {}  # neighbour-scored items without a vector
    for item, score in scores.items():
        code = factors.index.get(item)
        if code is None:
            outside[item] = score * neighbour_scale
        else:
            dense[code] += score * neighbour_scale
    for item in blocked:
        code = factors.index.get(item)
        if code is not None:
            dense[code] = -np.inf
    top = _top_codes(dense, limit)
    candidates = [(-float(dense[code]), factors.items[code]) for code in top]
    candidates.extend((-score, item) for item, score in outside.items())
    best = heapq.nsmallest(limit, ((negative, item) for negative, item in candidates if negative < 0.0))
    return _explained(best, sources, affinity, reason, neighbours, neighbour_scale, (factors, user, scale))


def _top_codes(dense: npt.NDArray[np.float64], limit: int) -> npt.NDArray[np.int64]:
    """The codes of the ``limit`` largest positive values, and any tied with the last of them."""
    positive = np.flatnonzero(dense > 0)
    if len(positive) > limit:
        cut = np.partition(dense[positive], len(positive) - limit)[len(positive) - limit]
        positive = positive[dense[positive] >= cut]
    return positive.astype(np.int64)


def _explained(
    best: list[tuple[float, str]],
    sources: list[str],
    affinity: dict[str, float],
    reason: dict[str, InteractionKind],
    neighbours: Mapping[str, Sequence[tuple[str, float]]],
    neighbour_scale: float = 1.0,
    factor_term: tuple[FactorScorer, UserFactor, float] | None = None,
) -> list[FeedItem]:
    """The chosen items as ``FeedItem``s, each with the source that contributed most to its score
    (first source on ties): through its neighbour list and, with ``factor_term``, its share of
    the user's ALS vector."""
    chosen = {item for _, item in best}
    contributions: dict[str, dict[str, float]] = {item: {} for item in chosen}
    for source in sources:
        weight = affinity[source] * neighbour_scale
        for neighbour, similarity in neighbours.get(source, ()):
            if neighbour in chosen:
                by_source = contributions[neighbour]
                by_source[source] = by_source.get(source, 0.0) + weight * similarity
    if factor_term is None:
        return [_because(item, -negative, contributions[item], reason) for negative, item in best]
    factors, user, scale = factor_term
    user_items = [factors.items[code] for code in user.codes]  # sorted, as fold_in sorts them
    column = {item: i for i, item in enumerate(user_items)}
    codes = np.array([factors.index.get(item, 0) for _, item in best], dtype=np.int64)
    shares = factors.contributions(user, codes) * scale
    items = []
    for row, (negative, item) in enumerate(best):
        by_source = contributions[item]
        if item not in factors.index:
            items.append(_because(item, -negative, by_source, reason))
            continue
        # The ALS shares of the user's items with vectors, plus their neighbour contributions; the
        # others count by their neighbour contributions alone.
        totals = shares[row].copy()
        for source, value in by_source.items():
            if source in column:
                totals[column[source]] += value
        best_column = int(np.argmax(totals))  # the first of equal maxima: the smallest id
        others = {source: value for source, value in by_source.items() if source not in column}
        others[user_items[best_column]] = float(totals[best_column])
        items.append(_because(item, -negative, others, reason))
    return items


def _because(item: str, score: float, by_source: dict[str, float], reason: dict[str, InteractionKind]) -> FeedItem:
    """``item`` explained by its largest contribution (the smallest source id on ties)."""
    because = min(by_source, key=lambda source: (-by_source[source], source))
    return FeedItem(item, score, because, reason[because])


def merge_popular(
    feed: Sequence[FeedItem],
    popular: Iterable[tuple[str, float]],
    exclude: Collection[str],
    limit: int,
    interactions: Sequence[UserInteraction] = (),
) -> list[FeedItem]:
    """``feed`` filled up to ``limit`` with popular items (best first) it lacks, for cold start."""
    merged = list(feed[: max(limit, 0)])
    taken = {entry.item for entry in merged}
    taken.update(exclude)
    taken.update(interaction.item for interaction in interactions)
    for item, score in popular:
        if len(merged) >= limit:
            break
        if item not in taken:
            taken.add(item)
            merged.append(FeedItem(item, float(score), None, "popular"))
    return merged


def _affinities(
    interactions: Sequence[UserInteraction], now: float, half_life_days: float | None
) -> tuple[dict[str, float], dict[str, InteractionKind]]:
    """Decayed affinity per interacted item, and the kind that contributed most to it."""
    rate = decay_rate(half_life_days)
    affinity: dict[str, float] = {}
    kind_weight: dict[tuple[str, InteractionKind], float] = {}
    # Sorted, so that float sums (hence ties) do not depend on the order the events came in.
    for interaction in sorted(interactions, key=lambda i: (i.item, i.ts, i.kind)):
        weight = KIND_WEIGHTS.get(interaction.kind, 0.0)
        if weight <= 0.0:
            continue
        value = weight * math.exp(-rate * max(now - interaction.ts, 0.0))
        affinity[interaction.item] = affinity.get(interaction.item, 0.0) + value
        key = (interaction.item, interaction.kind)
        kind_weight[key] = kind_weight.get(key, 0.0) + value
    reason: dict[str, InteractionKind] = {}
    best: dict[str, float] = {}
    for (item, kind), value in sorted(kind_weight.items()):
        if value > best.get(item, -1.0):
            best[item] = value
            reason[item] = kind
    return affinity, reason
