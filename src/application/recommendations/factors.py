"""The feed's second term: implicit-feedback matrix factorisation (ALS), folded in per user.

The neighbour table is linear in a user's items, and on MovieLens-100k every linear item-to-item
model we tried levelled off near nDCG@10 0.445. ALS adds what a sum over neighbours cannot: the
user's own vector, solved from all their items at once with a confidence per item (Hu, Koren and
Volinsky 2008). The refresh fits item vectors with ``implicit``; a ranking solves the user's vector
from their newest interactions (a ``rank × rank`` system: well under a millisecond), so a new
favorite counts at once, and scores every item with it.

A user's row is weighted as the fit weighted it: BM25 over the decayed affinities (``idf`` and
``mean_length`` come from the fit), times ``alpha``.
"""

from __future__ import annotations

import os
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.linalg
import scipy.sparse as sp

from application.recommendations.blas import single_threaded
from application.recommendations.table import ItemFactors

_FloatArray = npt.NDArray[np.float64]
_IntArray = npt.NDArray[np.int64]
SEED = 42


def bm25(
    values: _FloatArray, row_totals: _FloatArray, idf: _FloatArray, mean_length: float, k1: float, b: float
) -> _FloatArray:
    """BM25 weights of affinities: saturating in the value, shrunk for long rows, scaled by idf."""
    length_norm = (1.0 - b) + b * row_totals / max(mean_length, 1e-12)
    weighted: _FloatArray = values * (k1 + 1.0) / (k1 * length_norm + values) * idf
    return weighted


def fit_factors(
    matrix: sp.csr_matrix,
    items: Sequence[str],
    *,
    rank: int,
    regularization: float,
    alpha: float,
    iterations: int,
    bm25_k1: float,
    bm25_b: float,
    max_items: int,
    max_users: int,
) -> ItemFactors | None:
    """ALS item vectors for the ``max_items`` items with the most users, learnt from the
    ``max_users`` users with the most of those items (ties by code): past them the fit's time
    grows with catalogue and audience while the extra items have too few users for a vector worth
    having. ``items`` are the ids of the matrix's columns. None when there are too few items or
    users for the rank.
    """
    from implicit.cpu.als import AlternatingLeastSquares  # imported here: only a refresh needs it

    degree = matrix.getnnz(axis=0)
    head = np.sort(np.argsort(-degree, kind="stable")[:max_items])
    head = head[degree[head] > 0]
    rows = matrix[:, head].tocsr()
    per_user = rows.getnnz(axis=1)
    users = np.flatnonzero(per_user > 0)
    if len(users) > max_users:
        users = np.sort(users[np.argsort(-per_user[users], kind="stable")[:max_users]])
    if len(head) <= rank or len(users) <= rank:
        return None
    rows = rows[users].astype(np.float64).tocsr()
    idf = np.log(rows.shape[0]) - np.log1p(rows.getnnz(axis=0).astype(np.float64))
    totals = np.asarray(rows.sum(axis=1), dtype=np.float64).ravel()
    mean_length = float(totals.mean())
    entry_rows = np.repeat(np.arange(rows.shape[0]), np.diff(rows.indptr))
    weighted = rows.copy()
    weighted.data = bm25(rows.data, totals[entry_rows], idf[rows.indices], mean_length, bm25_k1, bm25_b)
    model = AlternatingLeastSquares(
        factors=rank,
        regularization=regularization,
        alpha=alpha,
        iterations=iterations,
        random_state=SEED,
        num_threads=max(1, min(os.cpu_count() or 1, 4)),
    )
    model.fit(weighted.astype(np.float32).tocsr(), show_progress=False)
    return ItemFactors(
        items=[items[code] for code in head],
        rank=rank,
        vectors=stdlib_array("f", np.asarray(model.item_factors, dtype=np.float32)),
        idf=stdlib_array("d", idf),
        mean_length=mean_length,
        regularization=regularization,
        alpha=alpha,
        bm25_k1=bm25_k1,
        bm25_b=bm25_b,
    )


def stdlib_array(typecode: str, values: npt.NDArray[Any]) -> array[Any]:
    """A stdlib array holding a NumPy array's values (one copy of the buffer): the ports' form."""
    out: array[Any] = array(typecode)
    out.frombytes(np.ascontiguousarray(values).tobytes())
    return out


def term_scale(total: float, weight: float = 1.0) -> float:
    """What a feed's score term is multiplied by: its weight over its total across all items, so
    the neighbour sum and the ALS scores weigh alike whatever their scales (a total that is not
    positive leaves the term at its weight)."""
    return weight / total if total > 0 else weight


@dataclass(frozen=True, slots=True)
class UserFactor:
    """A user folded into the model: their items (codes), the confidence of each, and
    ``directions`` (rank × items) whose confidence-weighted sum is the user's vector."""

    codes: _IntArray
    confidence: _FloatArray
    directions: _FloatArray
    vector: _FloatArray


class FactorScorer:
    """``ItemFactors`` ready to score users: vectors as a matrix, their Gram matrix, item positions."""

    def __init__(self, factors: ItemFactors) -> None:
        self.factors = factors
        self.items = list(factors.items)
        self.index = {item: code for code, item in enumerate(self.items)}
        # float32, as fitted: scoring every item streams the whole matrix, so half the bytes is
        # half the time; the user's own rows are solved in float64.
        self.vectors = np.frombuffer(factors.vectors, dtype=np.float32).reshape(len(self.items), factors.rank)
        self.idf = np.frombuffer(factors.idf, dtype=np.float64)
        gram = self.vectors.T.astype(np.float64) @ self.vectors.astype(np.float64)
        self.system = gram + factors.regularization * np.eye(factors.rank)

    def fold_in(self, affinity: Mapping[str, float]) -> UserFactor | None:
        """The user's vector from their affinities (items without a vector are left out)."""
        known = sorted(item for item in affinity if item in self.index)
        codes = np.array([self.index[item] for item in known], dtype=np.int64)
        return self.fold_in_codes(codes, np.array([affinity[item] for item in known], dtype=np.float64))

    def fold_in_codes(self, codes: _IntArray, values: _FloatArray) -> UserFactor | None:
        """``fold_in`` on item codes: the least-squares solve ALS makes for a user, with this row."""
        f = self.factors
        weights = bm25(values, np.full(len(values), values.sum()), self.idf[codes], f.mean_length, f.bm25_k1, f.bm25_b)
        keep = weights > 0
        codes, confidence = codes[keep], f.alpha * weights[keep]
        if len(codes) == 0:
            return None
        rows = self.vectors[codes].astype(np.float64)
        with single_threaded():
            system = self.system + (rows.T * (confidence - 1.0)) @ rows
            try:
                directions = scipy.linalg.solve(system, rows.T, assume_a="pos")
            except (np.linalg.LinAlgError, ValueError):
                # Confidences below 1 subtract from the system: past the regularisation it is no
                # longer positive definite, and this user gets no ALS term rather than a meaningless one.
                return None
        return UserFactor(codes, confidence, directions, directions @ confidence)

    def scores(self, user: UserFactor) -> _FloatArray:
        """The user's predicted preference for every item with a vector (indexed by code)."""
        with single_threaded():
            scores: _FloatArray = (self.vectors @ user.vector.astype(np.float32)).astype(np.float64)
        return scores

    def contributions(self, user: UserFactor, codes: _IntArray) -> _FloatArray:
        """How much each of the user's items adds to the scores of ``codes`` (codes × user items):
        the scores are linear in the confidences once the user's system is solved."""
        with single_threaded():
            contributions: _FloatArray = (self.vectors[codes].astype(np.float64) @ user.directions) * user.confidence
        return contributions
