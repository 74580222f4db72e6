"""Item-to-item recommendation model fitted offline on implicit interactions.

The model is a neighbour table (``item, neighbour, score``): a user's feed is the sum, over the items
they touched, of their time-decayed affinity times the neighbour score (see ``feed.score_feed``).
Serving therefore needs only dictionary look-ups, and the expensive part runs here, in batch.

Four similarity methods, picked by measurement on MovieLens-100k (see ``evaluation``):

* ``ease`` (Steck 2019, closed-form linear auto-encoder): the most accurate, but it inverts a dense
  item×item matrix, so alone it is only used up to ``ease_max_items`` items. Its top-N weights are
  refitted on their sparse pattern to predict the data plus a rank-64 smoothing of it (GF-CF's
  low-pass filter), which the truncated table could not otherwise carry.
* ``rp3beta`` (Paudel et al. 2017, a popularity-penalised random walk item→user→item): sparse,
  computed block by block with scipy.sparse, so it scales to 10M interactions.
* ``hybrid``: EASE among the ``ease_head_items`` most interacted-with items (they carry most of the
  interactions of a power-law catalogue, and most of what a feed shows) and RP3beta for every other
  item's neighbours, rescaled to EASE's magnitude: EASE's accuracy where it matters at the cost of
  one bounded dense inverse, whatever the catalogue size.
* ``sar`` (co-occurrence with Jaccard, as in Microsoft's SAR): the reference baseline.

``method="auto"`` uses EASE when the catalogue is small and the hybrid otherwise.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import numpy.typing as npt
import polars as pl
import scipy.linalg
import scipy.linalg.lapack
import scipy.sparse as sp
import scipy.sparse.linalg

from application.recommendations.blas import single_threaded
from application.recommendations.factors import fit_factors, stdlib_array
from application.recommendations.table import ItemFactors, NeighbourTable

WEIGHT_FAVORITE = 1.0
WEIGHT_PURCHASE = 2.0
WEIGHT_GOOD_REVIEW = 1.0
KIND_WEIGHTS: Mapping[str, float] = {
    "favorite": WEIGHT_FAVORITE,
    "purchase": WEIGHT_PURCHASE,
    "review": WEIGHT_GOOD_REVIEW,
}

SECONDS_PER_DAY = 86_400.0
# On MovieLens-100k decay never helped (its 7 months hold no drift) and 1 year cost nothing; a
# marketplace drifts more, so decay stays on with a horizon long enough not to erase a user's taste.
DEFAULT_HALF_LIFE_DAYS = 365.0
DEFAULT_TOP_N = 50

Method = Literal["auto", "ease", "hybrid", "rp3beta", "sar"]
METHODS: tuple[Method, ...] = ("auto", "ease", "hybrid", "rp3beta", "sar")

NEIGHBOUR_SCHEMA = {"item": pl.String, "neighbour": pl.String, "score": pl.Float64}

_FloatArray = npt.NDArray[np.float64]
_IntArray = npt.NDArray[np.int64]
# Upper bound on the non-zeros of one block of the item×item product, to bound peak memory.
_BLOCK_NNZ_BUDGET = 12_000_000
_REFIT_MAX_PREDICTORS = 150


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """Hyper-parameters; defaults picked on validation splits inside MovieLens-100k's train data (both protocols)."""

    method: Method = "auto"
    half_life_days: float | None = DEFAULT_HALF_LIFE_DAYS
    top_n: int = DEFAULT_TOP_N
    ease_lambda: float = 500.0
    ease_refit_lambda: float = 100.0
    # Weight and rank of the low-rank term added to the refit's targets (0 turns it off): chosen on a
    # validation split inside MovieLens-100k's train data (see ``_ease``).
    ease_smoothing: float = 1.0
    ease_smoothing_rank: int = 64
    # Each EASE neighbour's score times its user count to this power: a slight penalty on blockbusters
    # that every model already surfaces. Validation inside MovieLens-100k's train data was flat between
    # -0.05 and -0.1 (random preferred -0.05, chronological -0.2); test nDCG@10 +0.003 / +0.002.
    ease_popularity_exponent: float = -0.05
    # EASE inverts an items × items matrix: ~1 s at 2,000 items, ~5 s at 4,000, ~25 s at 8,000.
    ease_max_items: int = 5_000
    # The hybrid's dense head: its inverse and refit take ~5 s on 2 busy cores at 3,000 items.
    ease_head_items: int = 3_000
    rp3_alpha: float = 0.6
    rp3_beta: float = 0.5
    # RP3beta walks through at most this many of a user's items (their strongest): see _prune_heavy_users.
    rp3_max_user_items: int | None = 500
    sar_min_cooccurrence: int = 1
    # The ALS term of the feed (``factors``): its weight beside the neighbour sum (0 turns it off)
    # and its fit. Chosen on validation splits inside MovieLens-100k's train data, both protocols:
    # the sum of the two normalised terms beat either alone on both (see the README's numbers).
    als_weight: float = 1.0
    als_rank: int = 64
    als_regularization: float = 20.0
    als_alpha: float = 3.0
    als_iterations: int = 20
    als_bm25_k1: float = 100.0
    als_bm25_b: float = 0.8
    # Vectors for the items with the most users, learnt from the users with the most of them: the
    # fit's time grows with both (10M interactions over 917k products: see ``make bench-recs``).
    als_max_items: int = 50_000
    als_max_users: int = 100_000

    def resolved_method(self, n_items: int) -> Method:
        if self.method != "auto":
            return self.method
        return "ease" if n_items <= self.ease_max_items else "hybrid"


def decay_rate(half_life_days: float | None) -> float:
    """Per-second rate of ``exp(-rate * age)``, which halves every half-life; None means no decay."""
    if half_life_days is None:
        return 0.0
    if not half_life_days > 0:
        raise ValueError(f"half_life_days must be positive or None, not {half_life_days}")
    return math.log(2.0) / (half_life_days * SECONDS_PER_DAY)


def decay_expr(now: float, half_life_days: float | None) -> pl.Expr:
    """Weight multiplier ``2 ** (-age / half_life)``; events in the future count as new."""
    rate = decay_rate(half_life_days)
    if rate == 0.0:
        return pl.lit(1.0)
    return ((now - pl.col("ts")).clip(lower_bound=0.0) * -rate).exp()


def affinity(interactions: pl.DataFrame, *, now: float, half_life_days: float | None) -> pl.DataFrame:
    """One row per (user, item): the sum of the decayed weights of all their events."""
    return interactions.group_by("user", "item").agg(
        (pl.col("weight") * decay_expr(now, half_life_days)).sum().alias("affinity")
    )


@dataclass(frozen=True, slots=True)
class FittedModel:
    """A refresh's model: the neighbour table and, unless turned off or too small, ALS item vectors."""

    table: pl.DataFrame
    factors: ItemFactors | None


def fit(
    interactions: pl.DataFrame,
    config: ModelConfig = ModelConfig(),
    *,
    now: float | None = None,
) -> pl.DataFrame:
    """The neighbour table ``item, neighbour, score``: at most ``top_n`` positive scores per item.

    ``interactions`` has columns ``user, item, ts, weight``; ``now`` defaults to the newest ``ts``.
    Rows are sorted by item, then score descending, then neighbour, so the output is deterministic.
    """
    return fit_model(interactions, replace(config, als_weight=0.0), now=now).table


def fit_model(
    interactions: pl.DataFrame,
    config: ModelConfig = ModelConfig(),
    *,
    now: float | None = None,
) -> FittedModel:
    """The neighbour table (as ``fit``) and, when ``config.als_weight`` is positive, the item vectors."""
    if interactions.is_empty():
        return FittedModel(pl.DataFrame(schema=NEIGHBOUR_SCHEMA), None)
    now = _default_now(interactions, now)
    matrix, items = _user_item_matrix(interactions, now=now, half_life_days=config.half_life_days)
    method = config.resolved_method(len(items))
    if method == "ease":
        with single_threaded():
            rows, cols, scores = _ease(matrix, config)
    elif method == "hybrid":
        rows, cols, scores = _hybrid(matrix, config)
    elif method == "rp3beta":
        rows, cols, scores = _rp3beta(_prune_heavy_users(matrix, config.rp3_max_user_items), config)
    else:
        rows, cols, scores = _sar_jaccard(matrix, config.sar_min_cooccurrence, config.top_n)
    # Sorted on the integer codes (they sort like the ids), then decoded: sorting 36M strings took 10 s.
    coded = pl.DataFrame({"item": rows, "neighbour": cols, "score": scores.astype(np.float64)}).sort(
        ["item", "score", "neighbour"], descending=[False, True, False]
    )
    table = pl.DataFrame(
        {
            "item": items.gather(coded.get_column("item")),
            "neighbour": items.gather(coded.get_column("neighbour")),
            "score": coded.get_column("score"),
        },
        schema=NEIGHBOUR_SCHEMA,
    )
    factors = None
    if config.als_weight > 0:
        with single_threaded():  # implicit runs its own threads; BLAS threads would fight them
            factors = fit_factors(
                matrix,
                items.to_list(),
                rank=config.als_rank,
                regularization=config.als_regularization,
                alpha=config.als_alpha,
                iterations=config.als_iterations,
                bm25_k1=config.als_bm25_k1,
                bm25_b=config.als_bm25_b,
                max_items=config.als_max_items,
                max_users=config.als_max_users,
            )
    return FittedModel(table, factors)


def popularity(
    interactions: pl.DataFrame,
    *,
    now: float | None = None,
    half_life_days: float | None = DEFAULT_HALF_LIFE_DAYS,
    category: Mapping[str, str] | pl.DataFrame | None = None,
    top_n: int | None = None,
) -> pl.DataFrame:
    """Recent popularity: the decayed sum of weights per item, best first (ties by item id).

    With ``category`` (item → category, as a mapping or a frame ``item, category``) the ranking is per
    category and the frame has a ``category`` column; items without a category are dropped.
    ``top_n`` keeps that many items overall, or per category.
    """
    schema = {"item": pl.String, "score": pl.Float64}
    if interactions.is_empty():
        return pl.DataFrame(schema={"category": pl.String, **schema} if category is not None else schema)
    now = _default_now(interactions, now)
    scores = interactions.group_by("item").agg(
        (pl.col("weight") * decay_expr(now, half_life_days)).sum().cast(pl.Float64).alias("score")
    )
    if category is None:
        ranked = scores.sort(["score", "item"], descending=[True, False])
        return ranked.head(top_n) if top_n is not None else ranked
    categories = (
        category.select("item", "category")
        if isinstance(category, pl.DataFrame)
        else pl.DataFrame({"item": list(category), "category": list(category.values())})
    )
    ranked = scores.join(categories, on="item").sort(["category", "score", "item"], descending=[False, True, False])
    if top_n is not None:
        ranked = ranked.group_by("category", maintain_order=True).head(top_n)
    return ranked.select("category", "item", "score")


def neighbour_table(table: pl.DataFrame) -> NeighbourTable:
    """The neighbour table (``item, neighbour, score``) as the store port takes it: compressed
    rows over plain arrays, each product's neighbours in the table's order."""
    ids = pl.concat([table.get_column("item"), table.get_column("neighbour")]).unique(maintain_order=True)
    codes = pl.Enum(ids)
    coded = (
        table.select(
            pl.col("item").cast(codes).to_physical().cast(pl.Int64),
            pl.col("neighbour").cast(codes).to_physical().cast(pl.Int64),
            pl.col("score").cast(pl.Float64),
        )
        .with_row_index("order")
        .sort(["item", "order"])  # each product's rows together, in the table's order
    )
    counts = np.bincount(coded.get_column("item").to_numpy(), minlength=len(ids))
    offsets = np.concatenate([[0], np.cumsum(counts)])
    return NeighbourTable(
        items=ids.to_list(),
        offsets=stdlib_array("q", offsets.astype(np.int64)),
        neighbours=stdlib_array("q", coded.get_column("neighbour").to_numpy().astype(np.int64)),
        scores=stdlib_array("d", coded.get_column("score").to_numpy().astype(np.float64)),
    )


def neighbour_lookup(table: pl.DataFrame) -> dict[str, list[tuple[str, float]]]:
    """The neighbour table as the mapping ``score_feed`` reads (keeps the table's order)."""
    grouped = table.group_by("item", maintain_order=True).agg("neighbour", "score")
    return {item: list(zip(neighbours, scores, strict=True)) for item, neighbours, scores in grouped.iter_rows()}


def _default_now(interactions: pl.DataFrame, now: float | None) -> float:
    return now if now is not None else newest_ts(interactions)


def newest_ts(interactions: pl.DataFrame) -> float:
    """The latest event time: the natural ``now`` for offline fits and evaluation."""
    newest = interactions.get_column("ts").max()
    return float(newest) if isinstance(newest, int | float) else 0.0


def _user_item_matrix(
    interactions: pl.DataFrame, *, now: float, half_life_days: float | None
) -> tuple[sp.csr_matrix, pl.Series]:
    """Users × items CSR of decayed affinities, and the item ids (sorted) indexing its columns."""
    # Codes through Enum casts, and duplicates summed by scipy: much faster than a string group-by.
    items = interactions.get_column("item").unique().sort()
    users = interactions.get_column("user").unique(maintain_order=True)  # a fixed order: reproducible float sums
    coded = interactions.select(
        pl.col("user").cast(pl.Enum(users)).to_physical().cast(pl.Int32),
        pl.col("item").cast(pl.Enum(items)).to_physical().cast(pl.Int32),
        (pl.col("weight") * decay_expr(now, half_life_days)).cast(pl.Float32).alias("affinity"),
    )
    matrix = sp.csr_matrix(
        (coded["affinity"].to_numpy(), (coded["user"].to_numpy(), coded["item"].to_numpy())),
        shape=(len(users), len(items)),
    )
    matrix.sum_duplicates()
    return matrix, items


def _ease(matrix: sp.csr_matrix, config: ModelConfig) -> tuple[_IntArray, _IntArray, _FloatArray]:
    """EASE, then refitted on its own top-N pattern: dense, for small catalogues.

    Full EASE is ``B = I - P·diag(1/diag(P))`` with ``P = (XᵀX + λI)⁻¹``. Cutting it to N neighbours
    per item throws away much of its accuracy (nDCG@10 0.433 → 0.395 on MovieLens-100k), so the kept
    weights are solved again, restricted to the kept entries (as in sparse SLIM): 0.435. The refit
    predicts ``X·(I + s·F)`` rather than ``X``, F a rank-k smoothing of the item graph (see
    ``_low_rank_target``): the sparse weights also learn what the user's taste implies beyond the
    literal co-occurrences (validation nDCG@10 +0.007 random, -0.001 chronological). Last, each
    neighbour's weight is scaled by its user count to ``ease_popularity_exponent``.
    """
    gram = np.asarray((matrix.T @ matrix).toarray(), dtype=np.float64)
    precision = scipy.linalg.inv(
        gram + config.ease_lambda * np.eye(gram.shape[0]), overwrite_a=True, check_finite=False
    )
    weights = precision / -np.diag(precision)
    del precision
    np.fill_diagonal(weights, 0.0)
    rows, cols, first_fit = _top_n_dense(weights, config.top_n)
    del weights
    target = _low_rank_target(matrix, gram, config.ease_smoothing_rank) if config.ease_smoothing > 0 else None
    refitted = _refit_on_pattern(gram, rows, cols, first_fit, config.ease_refit_lambda, target, config.ease_smoothing)
    if config.ease_popularity_exponent:
        users_per_item = np.maximum(matrix.getnnz(axis=0), 1).astype(np.float64)
        refitted *= np.power(users_per_item, config.ease_popularity_exponent)[cols]
    positive = refitted > 0
    return rows[positive], cols[positive], refitted[positive]


def _low_rank_target(matrix: sp.csr_matrix, gram: _FloatArray, rank: int) -> tuple[_FloatArray, _FloatArray] | None:
    """``(Z, Y)`` with ``Z·Y = XᵀX·F``, ``F = D^-½ V Vᵀ D^½`` the "ideal low-pass filter" of GF-CF (Shen
    et al. 2021): V the top-``rank`` eigenvectors of the item graph ``D^-½ Xᵀ U⁻¹ X D^-½`` normalised
    by user (U) and item (D) totals. None when the catalogue is too small for that rank.
    """
    n_items = gram.shape[0]
    rank = min(rank, n_items - 2)
    if rank < 1:
        return None
    user_total = np.asarray(matrix.sum(axis=1), dtype=np.float64).ravel()
    item_total = np.maximum(np.asarray(matrix.sum(axis=0), dtype=np.float64).ravel(), 1e-12)
    scaled = sp.diags(1.0 / np.sqrt(np.maximum(user_total, 1e-12))) @ matrix.astype(np.float64)
    graph = np.asarray((scaled.T @ scaled).toarray()) / np.sqrt(np.outer(item_total, item_total))
    # One eigenpair more than the rank, to see whether the cut splits a repeated eigenvalue.
    if rank + 1 >= n_items // 2:
        values, vectors = scipy.linalg.eigh(graph, subset_by_index=[n_items - rank - 1, n_items - 1])
    else:  # a fixed start vector keeps ARPACK deterministic
        values, vectors = scipy.sparse.linalg.eigsh(graph, k=rank + 1, which="LA", v0=np.ones(n_items), tol=1e-2)
    order = np.argsort(-values, kind="stable")
    values, vectors = values[order], vectors[:, order]
    # A subspace cut inside a repeated eigenvalue (disconnected parts of the graph share eigenvalue 1)
    # is arbitrary, so it would change from run to run: keep only the eigenvalues above the gap.
    kept = values[:rank] > values[rank] + 1e-9 * max(1.0, abs(float(values[rank])))
    vectors = vectors[:, :rank][:, kept]
    if vectors.shape[1] == 0:
        return None
    left, right = gram @ (vectors / np.sqrt(item_total)[:, None]), (vectors * np.sqrt(item_total)[:, None]).T
    # Rounded to float32: BLAS kernels vary in the last bit with memory alignment, and the refit must
    # give the same table from the same data.
    return left.astype(np.float32).astype(np.float64), right.astype(np.float32).astype(np.float64)


def _refit_on_pattern(
    gram: _FloatArray,
    rows: _IntArray,
    cols: _IntArray,
    first_fit: _FloatArray,
    lam: float,
    target: tuple[_FloatArray, _FloatArray] | None = None,
    smoothing: float = 0.0,
) -> _FloatArray:
    """Ridge weights of each column j over the items whose top-N kept j (one small solve per j).

    The right-hand side is ``XᵀX_j``, plus ``smoothing·Z·Y_j`` with a low-rank ``target = (Z, Y)``.
    A popular j is kept by many items: its ``_REFIT_MAX_PREDICTORS`` strongest bound the cubic cost
    (no loss on MovieLens-100k, whose largest column has ~220) and the others get weight 0.
    """
    refitted = np.zeros(len(rows))
    by_column = np.argsort(cols, kind="stable")
    bounds = np.searchsorted(cols[by_column], np.arange(gram.shape[0] + 1))
    for j in range(gram.shape[0]):
        entries = by_column[bounds[j] : bounds[j + 1]]
        if len(entries) > _REFIT_MAX_PREDICTORS:
            entries = entries[np.argsort(-first_fit[entries], kind="stable")[:_REFIT_MAX_PREDICTORS]]
        if len(entries) == 0:
            continue
        predictors = rows[entries]
        system = gram[np.ix_(predictors, predictors)]
        system[np.diag_indices_from(system)] += lam
        rhs = gram[predictors, j]
        if target is not None:
            # einsum, not BLAS: its sums do not depend on memory alignment (reproducible tables)
            rhs = rhs + smoothing * np.einsum("pk,k->p", target[0][predictors], target[1][:, j])
        _, solution, info = scipy.linalg.lapack.dposv(system, rhs, overwrite_a=True)
        if info == 0:
            refitted[entries] = solution
    return refitted


def _hybrid(matrix: sp.csr_matrix, config: ModelConfig) -> tuple[_IntArray, _IntArray, _FloatArray]:
    """EASE neighbours for the head items (among themselves), RP3beta neighbours for the others.

    The head is the ``ease_head_items`` items with the most users (ties by item code). RP3beta's
    rows each sum to 1; they are scaled to the mean row sum of the EASE rows, so a user's items of
    both kinds weigh alike in the feed's sum.
    """
    n_items = matrix.shape[1]
    degree = matrix.getnnz(axis=0)
    head = np.sort(np.argsort(-degree, kind="stable")[: config.ease_head_items])
    if len(head) >= n_items:
        with single_threaded():
            return _ease(matrix, config)
    tail = np.setdiff1d(np.arange(n_items), head)
    # EASE (one BLAS thread) runs beside RP3beta's blocks: on 2 cores the fit then takes its CPU time
    # over 2 rather than EASE's time plus RP3beta's over 2.
    with single_threaded(), ThreadPoolExecutor(max_workers=1) as pool:
        ease = pool.submit(_ease, matrix[:, head].tocsr(), config)
        r_rows, r_cols, r_scores = _rp3beta(_prune_heavy_users(matrix, config.rp3_max_user_items), config, only=tail)
        e_rows, e_cols, e_scores = ease.result()
    e_rows, e_cols = head[e_rows], head[e_cols]
    ease_totals = np.bincount(e_rows, weights=e_scores, minlength=n_items)[head]
    scale = float(ease_totals[ease_totals > 0].mean()) if np.any(ease_totals > 0) else 1.0
    return (
        np.concatenate([e_rows, r_rows]),
        np.concatenate([e_cols, r_cols]),
        np.concatenate([e_scores, r_scores * scale]),
    )


def _prune_heavy_users(matrix: sp.csr_matrix, cap: int | None) -> sp.csr_matrix:
    """Users × items with each user's ``cap`` highest affinities at most (ties: smallest item code).

    A user with thousands of items (a reseller, a bot, an avid collector) adds cap² item pairs of
    near-zero weight to the walk: at 10M interactions the 286 users above 500 items cost a third of
    RP3beta's time, and dropping their weakest items kept 98.5% of the neighbour pairs (Pixie, Eksombatchai
    et al. 2018, prunes high-degree nodes of its walk graph for the same reason).
    """
    lengths = np.diff(matrix.indptr)
    heavy = np.flatnonzero(lengths > cap) if cap is not None else np.empty(0, np.int64)
    if len(heavy) == 0:
        return matrix
    # Row codes -1, -2, … never equal an item code, so _top_n_sparse drops no "self" entry.
    rows, cols, values = _top_n_sparse(matrix[heavy].tocsr(), -1 - np.arange(len(heavy), dtype=np.int64), cap or 0)
    light = np.repeat(lengths <= (cap or 0), lengths)
    coo = matrix.tocoo()
    return sp.csr_matrix(
        (
            np.concatenate([coo.data[light], values.astype(matrix.dtype)]),
            (np.concatenate([coo.row[light], heavy[-1 - rows]]), np.concatenate([coo.col[light], cols])),
        ),
        shape=matrix.shape,
    )


def _rp3beta(
    matrix: sp.csr_matrix, config: ModelConfig, *, only: _IntArray | None = None
) -> tuple[_IntArray, _IntArray, _FloatArray]:
    """RP3beta: item→user→item transition probabilities to the power alpha, over popularity**beta.

    The user→item step is the decayed affinity over the user's item count (not over the decayed sum,
    which would cancel the decay of a user whose interactions are all old). ``only`` computes the
    neighbours of those items alone (row codes in the result stay the items' codes).
    """
    binary = matrix.copy()
    binary.data[:] = 1.0
    user_to_item = (_row_normalised(binary).multiply(matrix)).power(config.rp3_alpha).tocsr()
    item_to_user = _row_normalised(binary.T.tocsr()).power(config.rp3_alpha).tocsr()
    degree = np.asarray(binary.sum(axis=0)).ravel()
    column_scale = np.power(np.maximum(degree, 1.0), -config.rp3_beta).astype(np.float32)

    sources = item_to_user if only is None else item_to_user[only]

    def block(start: int, stop: int) -> sp.csr_matrix:
        product = (sources[start:stop] @ user_to_item).tocsr()
        product.data *= column_scale[product.indices]
        return product

    codes = np.arange(binary.shape[1]) if only is None else only
    rows, cols, scores = _blockwise_top_n(block, binary, config.top_n, codes)
    # Each item's kept neighbours sum to 1: a heavy item must not drown the others in a user's sum.
    totals = np.bincount(rows, weights=scores, minlength=binary.shape[1])
    return rows, cols, scores / totals[rows]


def _sar_jaccard(matrix: sp.csr_matrix, min_cooccurrence: int, top_n: int) -> tuple[_IntArray, _IntArray, _FloatArray]:
    """SAR: co-occurrence counts normalised by Jaccard ``c_ij / (c_i + c_j - c_ij)``."""
    binary = matrix.copy()
    binary.data[:] = 1.0
    transposed = binary.T.tocsr()
    counts = np.asarray(binary.sum(axis=0)).ravel().astype(np.float32)

    def block(start: int, stop: int) -> sp.csr_matrix:
        product = (transposed[start:stop] @ binary).tocsr()
        if min_cooccurrence > 1:
            product.data[product.data < min_cooccurrence] = 0.0
        rows = np.repeat(np.arange(start, stop), np.diff(product.indptr))
        product.data /= counts[rows] + counts[product.indices] - product.data
        return product

    return _blockwise_top_n(block, binary, top_n, np.arange(binary.shape[1]))


def _row_normalised(matrix: sp.csr_matrix) -> sp.csr_matrix:
    sums = np.asarray(matrix.sum(axis=1)).ravel()
    inverse = np.divide(1.0, sums, out=np.zeros_like(sums), where=sums > 0)
    return sp.csr_matrix(sp.diags(inverse.astype(np.float32)) @ matrix)


def _blocks(binary: sp.csr_matrix, codes: _IntArray) -> Iterator[tuple[int, int]]:
    """Ranges of ``codes`` (the items whose rows are computed) whose slice of the item×item
    product stays under the non-zero budget.

    The non-zeros of row i are bounded by the sum of the degrees of i's users (and by the catalogue).
    """
    n_items = binary.shape[1]
    user_degree = np.diff(binary.indptr).astype(np.float64)
    bound = np.minimum(np.asarray(binary.T @ user_degree).ravel(), n_items)[codes]
    cumulative = np.cumsum(bound)
    start = 0
    while start < len(codes):
        limit = (cumulative[start - 1] if start else 0.0) + _BLOCK_NNZ_BUDGET
        stop = max(int(np.searchsorted(cumulative, limit, side="right")), start + 1)
        yield start, min(stop, len(codes))
        start = stop


def _blockwise_top_n(
    block: Callable[[int, int], sp.csr_matrix], binary: sp.csr_matrix, top_n: int, codes: _IntArray
) -> tuple[_IntArray, _IntArray, _FloatArray]:
    """Run ``block(start, stop)`` (rows ``codes[start:stop]``) on all cores and keep each row's top-N."""

    def work(bounds: tuple[int, int]) -> tuple[_IntArray, _IntArray, _FloatArray]:
        start, stop = bounds
        return _top_n_sparse(block(start, stop), codes[start:stop], top_n)

    workers = max(1, min(os.cpu_count() or 1, 4))
    with ThreadPoolExecutor(max_workers=workers) as pool:  # scipy.sparse products release the GIL
        parts = list(pool.map(work, _blocks(binary, codes)))
    if not parts:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64)
    rows, cols, scores = zip(*parts, strict=True)
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(scores)


def _top_n_sparse(product: sp.csr_matrix, row_codes: _IntArray, top_n: int) -> tuple[_IntArray, _IntArray, _FloatArray]:
    """The ``top_n`` largest positive off-diagonal entries of each row of a CSR block whose row r
    is item ``row_codes[r]``; the rows returned are those item codes.

    Vectorised (a Python loop over 500k long rows took 15 s at 10M interactions): each long row's
    cut value comes from ``np.partition`` over rows padded to a common length, bucketed by length so
    padding at most doubles the cells. Ties at the cut keep the smallest columns, so the table does
    not depend on thread timing.
    """
    indptr, indices, data = product.indptr, product.indices, product.data
    lengths = np.diff(indptr)
    rows = np.repeat(np.arange(product.shape[0], dtype=np.int32), lengths)
    # Self-pairs and non-positive scores drop out as -inf (cheaper than removing them from the CSR).
    data[(data <= 0) | (indices == row_codes[rows])] = -np.inf
    cut = np.full(product.shape[0], -np.inf, dtype=data.dtype)
    long_rows = np.flatnonzero(lengths > top_n)
    buckets = np.ceil(np.log2(lengths[long_rows])).astype(np.int64) if len(long_rows) else long_rows
    for bucket in np.unique(buckets):
        chosen = long_rows[buckets == bucket]
        width = int(lengths[chosen].max())
        for part in np.array_split(chosen, max(1, len(chosen) * width // _BLOCK_NNZ_BUDGET + 1)):
            offsets = np.arange(width)
            inside = offsets[None, :] < lengths[part][:, None]
            cells = np.where(inside, indptr[part][:, None] + offsets[None, :], 0)
            padded = np.where(inside, data[cells], -np.inf)
            cut[part] = np.partition(padded, width - top_n, axis=1)[:, width - top_n]
    row_cut = cut[rows]
    keep = data > row_cut
    ties = np.flatnonzero((data == row_cut) & (data > 0))
    if len(ties):
        # Fill each row up to top_n with its tied entries, smallest column first.
        room = top_n - np.bincount(rows[keep], minlength=product.shape[0])
        ties = ties[np.lexsort((indices[ties], rows[ties]))]
        tie_rows = rows[ties]
        first = np.searchsorted(tie_rows, tie_rows, side="left")
        keep[ties[np.arange(len(ties)) - first < room[tie_rows]]] = True
    return (
        row_codes[rows[keep]].astype(np.int64),
        indices[keep].astype(np.int64),
        data[keep].astype(np.float64),
    )


def _top_n_dense(weights: _FloatArray, top_n: int) -> tuple[_IntArray, _IntArray, _FloatArray]:
    n = weights.shape[1]
    if n > top_n:
        cols = np.argpartition(-weights, top_n - 1, axis=1)[:, :top_n]
    else:
        cols = np.tile(np.arange(n), (weights.shape[0], 1))
    vals = np.take_along_axis(weights, cols, axis=1)
    rows = np.repeat(np.arange(weights.shape[0], dtype=np.int64), cols.shape[1])
    cols, vals = cols.ravel().astype(np.int64), vals.ravel()
    positive = vals > 0
    return rows[positive], cols[positive], vals[positive]
