"""Catalog read models (lists, details, profiles) and the filters that select them.

Queries build these straight from rows; nothing here is an entity or is written back.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from decimal import Decimal

import msgspec


class ProductSort(enum.StrEnum):
    NEWEST = "newest"
    PRICE_ASC = "price_asc"
    PRICE_DESC = "price_desc"
    RATING = "rating"
    RELEVANCE = "relevance"


class SellerRef(msgspec.Struct, frozen=True):
    id: uuid.UUID
    username: str


class CategoryRef(msgspec.Struct, frozen=True):
    id: uuid.UUID
    name: str
    slug: str


class ProductSummary(msgspec.Struct, frozen=True):
    """A product as lists show it (no description)."""

    id: uuid.UUID
    seller: SellerRef
    name: str
    price: Decimal
    image_url: str | None
    category: CategoryRef | None  # None: an uncategorised product
    stock: int
    rating_avg: float | None
    review_count: int
    favorite_count: int
    created_at: datetime
    updated_at: datetime


class ProductDetail(ProductSummary, frozen=True):
    """A product's page: its summary and the description (last in the JSON; field order carries no meaning)."""

    description: str


class CategoryView(msgspec.Struct, frozen=True):
    id: uuid.UUID
    name: str
    slug: str
    parent_id: uuid.UUID | None
    product_count: int


class ReviewView(msgspec.Struct, frozen=True):
    id: uuid.UUID
    product_id: uuid.UUID
    author: SellerRef
    rating: int
    comment: str
    verified_purchase: bool
    created_at: datetime
    updated_at: datetime


class FavoriteView(msgspec.Struct, frozen=True):
    product: ProductSummary
    created_at: datetime
    # Keyset position (favorites.id); not shown to clients.
    favorite_id: uuid.UUID


class PublicProfile(msgspec.Struct, frozen=True):
    id: uuid.UUID
    username: str
    created_at: datetime
    product_count: int
    rating_avg: float | None


class ProductFilter(msgspec.Struct, frozen=True):
    """What GET /api/products selects; ``category_ids`` is already expanded to sub-categories."""

    q: str | None = None
    category_ids: frozenset[uuid.UUID] | None = None
    seller_id: uuid.UUID | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    in_stock: bool | None = None


# The value a listing is ordered by: created_at (newest), price, stored rating_avg, or a rank.
SortKey = datetime | Decimal | float


def rating_out(rating_avg: Decimal | None) -> float | None:
    """rating_avg as clients get it: a JSON number with two decimals, or null."""
    return None if rating_avg is None else float(rating_avg)
