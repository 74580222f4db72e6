"""Recommendation read models: the personal feed and similar products."""

from __future__ import annotations

import uuid

import msgspec

from application.views.catalog import ProductSummary


class Recommendation(msgspec.Struct, frozen=True):
    """A feed entry: the product, its relevance (the list is sorted by it) and why it is there."""

    product: ProductSummary
    score: float
    reason: str


class Feed(msgspec.Struct, frozen=True):
    items: list[Recommendation]


class SimilarProduct(msgspec.Struct, frozen=True):
    product: ProductSummary
    score: float


class SimilarProducts(msgspec.Struct, frozen=True):
    items: list[SimilarProduct]


class Ranked(msgspec.Struct, frozen=True, array_like=True):
    """A ranked product id as cached between requests; products are looked up fresh each time,
    so a withdrawn one disappears at once even from a cached ranking."""

    product_id: uuid.UUID
    score: float
    reason: str = ""
