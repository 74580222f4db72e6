"""The fitted model as the store takes it: plain arrays, no data-frame library (a port type)."""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NeighbourTable:
    """A fitted model: every product's neighbours, best first, as compressed rows.

    The neighbours of ``items[i]`` are ``items[k]`` for each ``k`` in
    ``neighbours[offsets[i]:offsets[i + 1]]``, scored by the same slice of ``scores``. Plain
    arrays, not a Python list per product: a million products with fifty neighbours each stay a
    few hundred megabytes, and an adapter can read the arrays' buffers without copying them.
    """

    items: Sequence[str]  # product ids, canonical strings
    offsets: array[int]  # len(items) + 1 positions into neighbours and scores
    neighbours: array[int]  # positions into items
    scores: array[float]

    def rows(self) -> Iterator[tuple[str, list[tuple[str, float]]]]:
        """Each product with its neighbour list (for small stores and tests)."""
        for i, item in enumerate(self.items):
            start, stop = self.offsets[i], self.offsets[i + 1]
            if stop > start:
                pairs = zip(self.neighbours[start:stop], self.scores[start:stop], strict=True)
                yield item, [(self.items[k], score) for k, score in pairs]


@dataclass(frozen=True, slots=True)
class ItemFactors:
    """Item vectors of an implicit-feedback matrix factorisation (ALS), and what folding a user in
    needs: the fit's BM25 weighting of a user's row and its confidence scale and regularisation.

    ``vectors`` holds ``len(items) × rank`` float32 values, row-major. ``idf`` is BM25's inverse
    document frequency of each item and ``mean_length`` the mean user-row total, both from the fit.
    """

    items: Sequence[str]  # product ids, canonical strings
    rank: int
    vectors: array[float]  # typecode "f"
    idf: array[float]  # typecode "d"
    mean_length: float
    regularization: float
    alpha: float
    bm25_k1: float
    bm25_b: float
