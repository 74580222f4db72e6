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
