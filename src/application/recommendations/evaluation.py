"""Offline evaluation: split protocols, top-k ranking metrics and a side-by-side runner.

Protocols (both work on distinct (user, item) pairs, so an item is never in a user's train and test):

* ``random``: per user, a seeded (42) random 20% of their items go to test.
* ``chrono``: per user, their latest 20% of items by first-interaction time go to test (ties by item).

A user with n ≥ 2 items gets ``max(1, round(0.2·n))`` test items (halves round up), so at least one
stays in train; a user with a single item has nothing to hold out: it stays in train (it still feeds
the model) and is not evaluated. Every interaction is a positive. Train items are never recommended.

Metrics at k, averaged over the users with test items (a user with no recommendation scores 0):

* P@k = hits / k.
* R@k = hits / |test| (the standard recall; not capped at k).
* nDCG@k: binary relevance, gain 1/log2(rank+1), ideal DCG over min(k, |test|) hits.
* MAP@k: AP@k = Σ over hits of precision@rank, divided by min(k, |test|).
* coverage: distinct items in any evaluated top-k / distinct items in train (the catalogue).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt
import polars as pl
import scipy.sparse as sp

from application.recommendations.factors import FactorScorer, term_scale
from application.recommendations.model import ModelConfig, affinity, fit_model, newest_ts, popularity
from application.recommendations.table import ItemFactors

Protocol_ = Literal["random", "chrono"]
PROTOCOLS: tuple[Protocol_, ...] = ("random", "chrono")
SPLIT_SEED = 42
TEST_FRACTION = 0.2
DEFAULT_K = 10
# Dense score rows scored at once when ranking for many users.
_CHUNK_CELLS = 8_000_000


def _pairs(interactions: pl.DataFrame) -> pl.DataFrame:
    """Distinct (user, item) pairs with the time of the first interaction, in a fixed order."""
    return interactions.group_by("user", "item").agg(pl.col("ts").min()).sort("user", "item")


def _with_test_size(pairs: pl.DataFrame, test_fraction: float) -> pl.DataFrame:
    n = pl.len().over("user")
    size = pl.when(n >= 2).then(pl.max_horizontal((n * test_fraction + 0.5).floor().cast(pl.Int64), 1))
    return pairs.with_columns(size.otherwise(0).alias("_n_test"))


def _split_on(pairs: pl.DataFrame, interactions: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Train keeps every event of the train pairs; test is the held-out pairs."""
    is_test = pl.col("_rank") < pl.col("_n_test")
    test = pairs.filter(is_test).select("user", "item")
    train = interactions.join(test, on=["user", "item"], how="anti")
    return train, test


def random_split(
    interactions: pl.DataFrame, *, test_fraction: float = TEST_FRACTION, seed: int = SPLIT_SEED
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per user, a seeded random ``test_fraction`` of their items to test: ``(train events, test pairs)``."""
    pairs = _with_test_size(_pairs(interactions), test_fraction)
    key = np.random.default_rng(seed).random(pairs.height)
    pairs = pairs.with_columns(pl.Series("_key", key)).with_columns(
        pl.col("_key").rank("ordinal").over("user").sub(1).alias("_rank")
    )
    return _split_on(pairs, interactions)


def chrono_split(
    interactions: pl.DataFrame, *, test_fraction: float = TEST_FRACTION
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per user, the latest ``test_fraction`` of their items to test: ``(train events, test pairs)``."""
    pairs = _with_test_size(_pairs(interactions), test_fraction)
    pairs = pairs.sort(["user", "ts", "item"], descending=[False, True, True]).with_columns(
        pl.int_range(pl.len()).over("user").alias("_rank")
    )
    return _split_on(pairs, interactions)


SPLITS: dict[Protocol_, Callable[[pl.DataFrame], tuple[pl.DataFrame, pl.DataFrame]]] = {
    "random": random_split,
    "chrono": chrono_split,
}


@dataclass(frozen=True, slots=True)
class Metrics:
    """Means over the evaluated users (see the module docstring for each definition)."""

    precision: float
    recall: float
    ndcg: float
    map: float
    coverage: float
    n_users: int


def ranking_metrics(recommendations: pl.DataFrame, test: pl.DataFrame, *, k: int, n_catalogue: int) -> Metrics:
    """Metrics of ``recommendations`` (``user, item, rank`` with rank 1 = best) against ``test`` pairs."""
    recs = recommendations.filter(pl.col("rank") <= k)
    truth = test.unique(["user", "item"]).group_by("user").agg(pl.len().alias("n_test"))
    n_users = truth.height
    if n_users == 0:
        return Metrics(0.0, 0.0, 0.0, 0.0, 0.0, 0)
    hits = (
        recs.join(test.unique(["user", "item"]), on=["user", "item"])
        .sort("user", "rank")
        .with_columns(pl.int_range(1, pl.len() + 1).over("user").alias("hit_no"))
        .group_by("user")
        .agg(
            pl.len().alias("hits"),
            (1.0 / (pl.col("rank") + 1).log(2)).sum().alias("dcg"),
            (pl.col("hit_no") / pl.col("rank")).sum().alias("ap_sum"),
        )
    )
    ideal = pl.DataFrame(
        {
            "ideal_n": list(range(1, k + 1)),
            "idcg": np.cumsum([1.0 / math.log2(i + 1) for i in range(1, k + 1)]),
        },
        schema={"ideal_n": pl.Int64, "idcg": pl.Float64},
    )
    per_user = (
        truth.with_columns(pl.min_horizontal("n_test", pl.lit(k)).cast(pl.Int64).alias("ideal_n"))
        .join(ideal, on="ideal_n")
        .join(hits, on="user", how="left")
        .fill_null(0)
        .select(
            (pl.col("hits") / k).alias("precision"),
            (pl.col("hits") / pl.col("n_test")).alias("recall"),
            (pl.col("dcg") / pl.col("idcg")).alias("ndcg"),
            (pl.col("ap_sum") / pl.col("ideal_n")).alias("map"),
        )
    )
    means = per_user.mean().row(0, named=True)
    evaluated = recs.join(truth.select("user"), on="user", how="semi")
    coverage = evaluated.get_column("item").n_unique() / n_catalogue if n_catalogue else 0.0
    return Metrics(
        precision=float(means["precision"]),
        recall=float(means["recall"]),
        ndcg=float(means["ndcg"]),
        map=float(means["map"]),
        coverage=coverage,
        n_users=n_users,
    )


class Recommender(Protocol):
    """What ``evaluate`` needs from a model: fit on train, then a top-k per requested user."""

    @property
    def name(self) -> str: ...

    def fit(self, train: pl.DataFrame, now: float) -> None: ...

    def recommend(self, train: pl.DataFrame, users: pl.Series, k: int, now: float) -> pl.DataFrame:
        """``user, item, rank`` (1 = best), never an item of the user's train."""
        ...


_FloatMatrix = npt.NDArray[np.float64]


class _Catalogue:
    """Integer codes for the train users and items, and each user's train items as a CSR matrix."""

    def __init__(self, train: pl.DataFrame, users: pl.Series) -> None:
        self.items = train.get_column("item").unique().sort()
        self.users = users.unique().sort()
        pairs = (
            train.select("user", "item")
            .unique()
            .join(pl.DataFrame({"user": self.users}), on="user", how="semi")
            .pipe(self.encode)
        )
        self.seen = self.matrix(pairs, np.ones(pairs.height, dtype=np.float32))

    def encode(self, frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(
            pl.col("user").cast(pl.Enum(self.users)).to_physical().cast(pl.Int64),
            pl.col("item").cast(pl.Enum(self.items)).to_physical().cast(pl.Int64),
        )

    def matrix(self, coded: pl.DataFrame, values: npt.NDArray[np.floating[Any]]) -> sp.csr_matrix:
        """Users × items from a coded ``user, item`` frame."""
        return sp.csr_matrix(
            (values, (coded["user"].to_numpy(), coded["item"].to_numpy())),
            shape=(len(self.users), len(self.items)),
        )

    def neighbour_matrix(self, table: pl.DataFrame) -> sp.csr_matrix:
        """Items × items scores from a neighbour table ``item, neighbour, score``."""
        codes = pl.Enum(self.items)
        coded = table.select(
            pl.col("item").cast(codes).to_physical().cast(pl.Int64),
            pl.col("neighbour").cast(codes).to_physical().cast(pl.Int64),
            "score",
        )
        n_items = len(self.items)
        return sp.csr_matrix(
            (coded["score"].to_numpy(), (coded["item"].to_numpy(), coded["neighbour"].to_numpy())),
            shape=(n_items, n_items),
        )

    def item_vector(self, frame: pl.DataFrame, column: str) -> _FloatMatrix:
        """A dense per-item vector from ``item, <column>`` (0 for items not in the frame)."""
        coded = frame.join(pl.DataFrame({"item": self.items}), on="item", how="semi").with_columns(
            pl.col("item").cast(pl.Enum(self.items)).to_physical().cast(pl.Int64)
        )
        vector = np.zeros(len(self.items))
        vector[coded["item"].to_numpy()] = coded[column].to_numpy()
        return vector

    def top_k(self, scores: Callable[[int, int], _FloatMatrix], k: int) -> pl.DataFrame:
        """Rank ``scores(start, stop)`` (users × items, dense) per user, hiding train items."""
        n_users, n_items = self.seen.shape
        chunk = max(1, _CHUNK_CELLS // max(n_items, 1))
        k = min(k, n_items)
        frames = [pl.DataFrame(schema={"user": pl.String, "item": pl.String, "rank": pl.Int64})]
        if k == 0:
            return frames[0]
        for start in range(0, n_users, chunk):
            stop = min(start + chunk, n_users)
            block = np.array(scores(start, stop), dtype=np.float64)
            block[self.seen[start:stop].toarray() > 0] = -np.inf
            # Deterministic order: score descending, then item code (the ids sort like the codes).
            top = np.argpartition(-block, k - 1, axis=1)[:, :k] if k < n_items else None
            cand = top if top is not None else np.tile(np.arange(n_items), (stop - start, 1))
            cand_scores = np.take_along_axis(block, cand, axis=1)
            order = np.lexsort((cand, -cand_scores), axis=1)
            cand = np.take_along_axis(cand, order, axis=1)
            valid = np.isfinite(np.take_along_axis(cand_scores, order, axis=1))
            user_codes = np.repeat(np.arange(start, stop), k).reshape(-1, k)
            frames.append(
                pl.DataFrame(
                    {
                        "user": self.users.gather(user_codes[valid]),
                        "item": self.items.gather(cand[valid]),
                        "rank": np.tile(np.arange(1, k + 1, dtype=np.int64), (stop - start, 1))[valid],
                    }
                )
            )
        return pl.concat(frames)


@dataclass
class PopularityRecommender:
    """The baseline: recent popularity, the same for everyone (minus what they already have)."""

    half_life_days: float | None = ModelConfig().half_life_days
    name: str = "popularity"
    _scores: pl.DataFrame = field(default_factory=pl.DataFrame, repr=False)

    def fit(self, train: pl.DataFrame, now: float) -> None:
        self._scores = popularity(train, now=now, half_life_days=self.half_life_days)

    def recommend(self, train: pl.DataFrame, users: pl.Series, k: int, now: float) -> pl.DataFrame:
        catalogue = _Catalogue(train, users)
        vector = catalogue.item_vector(self._scores, "score")
        return catalogue.top_k(lambda start, stop: np.broadcast_to(vector, (stop - start, len(vector))), k)


@dataclass
class ItemToItemRecommender:
    """The served model: decayed user affinities times the neighbour table, popular items to fill."""

    config: ModelConfig = field(default_factory=ModelConfig)
    label: str = "item-to-item"
    table: pl.DataFrame = field(default_factory=pl.DataFrame, repr=False)
    factors: ItemFactors | None = field(default=None, repr=False)
    _popular: pl.DataFrame = field(default_factory=pl.DataFrame, repr=False)
    _method: str = ""

    @property
    def name(self) -> str:
        """The label and the method that ``auto`` resolved to on the last fit."""
        blend = " + als" if self.factors is not None else ""
        return f"{self.label} ({self._method or self.config.method}{blend})"

    def fit(self, train: pl.DataFrame, now: float) -> None:
        self._method = self.config.resolved_method(train.get_column("item").n_unique())
        model = fit_model(train, self.config, now=now)
        self.table, self.factors = model.table, model.factors
        self._popular = popularity(train, now=now, half_life_days=self.config.half_life_days)

    def recommend(self, train: pl.DataFrame, users: pl.Series, k: int, now: float) -> pl.DataFrame:
        catalogue = _Catalogue(train, users)
        # Same arithmetic as score_feed: Σ over the user's items of decayed affinity × neighbour score.
        user_affinity = catalogue.encode(
            affinity(train, now=now, half_life_days=self.config.half_life_days).join(
                pl.DataFrame({"user": catalogue.users}), on="user", how="semi"
            )
        )
        weights = catalogue.matrix(user_affinity, user_affinity["affinity"].to_numpy())
        neighbours = catalogue.neighbour_matrix(self.table)
        # Items the model does not reach rank after every model item, in popularity order (as served).
        pop = catalogue.item_vector(self._popular, "score")
        fallback = pop / (pop.max(initial=0.0) + 1.0) - 2.0

        factor_scores = _FactorScores(catalogue, self.factors, self.config.als_weight)

        def scores(start: int, stop: int) -> _FloatMatrix:
            block = np.asarray((weights[start:stop] @ neighbours).toarray(), dtype=np.float64)
            block = factor_scores.blend(block, weights[start:stop])
            return np.where(block > 0, block, fallback)

        return catalogue.top_k(scores, k)


class _FactorScores:
    """The ALS term of ``score_feed`` for a block of users at once: the same fold-in per user, and
    each term divided by its total over all items."""

    def __init__(self, catalogue: _Catalogue, factors: ItemFactors | None, weight: float) -> None:
        self.scorer = FactorScorer(factors) if factors is not None and weight > 0 else None
        self.weight = weight
        if self.scorer is not None:
            ids = pl.Series(self.scorer.items, dtype=pl.String)
            self.columns = ids.cast(pl.Enum(catalogue.items)).to_physical().cast(pl.Int64).to_numpy()
            # Catalogue column → scorer code (-1: an item without a vector).
            self.to_scorer = np.full(len(catalogue.items), -1, dtype=np.int64)
            self.to_scorer[self.columns] = np.arange(len(self.columns))

    def blend(self, block: _FloatMatrix, weights: sp.csr_matrix) -> _FloatMatrix:
        if self.scorer is None:
            return block
        blended = np.empty_like(block)
        for row in range(block.shape[0]):
            blended[row] = block[row] * term_scale(float(block[row].sum()))
            start, stop = weights.indptr[row], weights.indptr[row + 1]
            codes = self.to_scorer[weights.indices[start:stop]]
            known = codes >= 0
            order = np.argsort(codes[known], kind="stable")
            values = weights.data[start:stop][known][order].astype(np.float64)
            user = self.scorer.fold_in_codes(codes[known][order], values)
            if user is not None:
                predicted = self.scorer.scores(user)
                blended[row, self.columns] += predicted * term_scale(float(np.abs(predicted).sum()), self.weight)
        return blended


@dataclass(frozen=True, slots=True)
class EvalResult:
    """One model on one protocol."""

    model: str
    protocol: Protocol_
    k: int
    metrics: Metrics
    fit_seconds: float


def evaluate(
    interactions: pl.DataFrame,
    models: Sequence[Recommender] | None = None,
    *,
    protocols: Sequence[Protocol_] = PROTOCOLS,
    k: int = DEFAULT_K,
) -> list[EvalResult]:
    """Each model (default: the item-to-item model and the popularity baseline) on each protocol."""
    chosen: Sequence[Recommender] = models if models is not None else (ItemToItemRecommender(), PopularityRecommender())
    results = []
    for protocol in protocols:
        train, test = SPLITS[protocol](interactions)
        now = newest_ts(train)
        users = test.get_column("user").unique()
        n_catalogue = train.get_column("item").n_unique()
        for model in chosen:
            started = time.perf_counter()
            model.fit(train, now)
            fit_seconds = time.perf_counter() - started
            recs = model.recommend(train, users, k, now)
            metrics = ranking_metrics(recs, test, k=k, n_catalogue=n_catalogue)
            results.append(EvalResult(model.name, protocol, k, metrics, fit_seconds))
    return results
