"""Catalog ports: repositories for the write side (on the unit of work) and a read-side query port.

Write repositories load and store entities inside a unit of work; counters on products
(ratings, favorites) change by arithmetic updates in the same transaction as the review or
favorite that moves them, so they stay exact under concurrency. ``CatalogQueries`` builds
read models (``application.views.catalog``) straight from rows, one statement per page.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from application.pagination import Keyset
from application.views import catalog as views
from domain.catalog import Category, Favorite, Product, Review


class CategoryRepository(Protocol):
    async def add(self, category: Category) -> None:
        """Insert; ``Conflict`` (field ``slug``) when the slug is taken, even by a racing insert."""
        ...

    async def get(self, category_id: uuid.UUID) -> Category | None: ...

    async def update(self, category: Category) -> None:
        """Store name, slug and parent; ``Conflict`` (field ``slug``) on a taken slug."""
        ...

    async def delete(self, category_id: uuid.UUID) -> bool:
        """Delete; ``Conflict`` while products or sub-categories still point at it."""
        ...

    async def slugs_like(self, base: str) -> set[str]:
        """Slugs equal to ``base`` or of the form ``base-<anything>``."""
        ...

    async def parent_links(self) -> dict[uuid.UUID, uuid.UUID | None]:
        """Every category's parent (the whole tree; categories are few)."""
        ...

    async def in_use(self, category_id: uuid.UUID) -> bool:
        """Whether any product (withdrawn ones too) or sub-category points at it."""
        ...

    async def lock_tree(self) -> None:
        """Serialise tree changes until the unit of work ends (so two moves cannot make a cycle)."""
        ...


class ProductRepository(Protocol):
    async def add(self, product: Product) -> None:
        """Insert; ``RuleViolation`` (field ``category_id``) when the category does not exist."""
        ...

    async def get(self, product_id: uuid.UUID) -> Product | None:
        """A live (not withdrawn) product."""
        ...

    async def update_fields(self, product_id: uuid.UUID, changes: Mapping[str, Any], now: datetime) -> bool:
        """Set only the given writable columns of a live product (others are left as they are in
        the database, so a concurrent stock decrement is never overwritten); False when gone."""
        ...

    async def withdraw(self, product_id: uuid.UUID, now: datetime) -> bool:
        """Soft-delete a live product; False when it was already withdrawn or never existed."""
        ...

    async def withdraw_all_of_seller(self, seller_id: uuid.UUID, now: datetime) -> list[uuid.UUID]:
        """Withdraw every live product of a seller; returns their ids."""
        ...

    async def apply_rating_change(self, product_id: uuid.UUID, rating_delta: int, count_delta: int) -> None:
        """``rating_sum += rating_delta, review_count += count_delta`` and the average recomputed
        from those, in one UPDATE (never a recount)."""
        ...

    async def apply_favorite_change(self, product_ids: Sequence[uuid.UUID], delta: int) -> None: ...


class ReviewRepository(Protocol):
    async def add(self, review: Review) -> None:
        """Insert; ``Conflict`` when the author already reviewed the product (the unique key decides)."""
        ...

    async def get(self, review_id: uuid.UUID) -> Review | None: ...

    async def update(
        self, review_id: uuid.UUID, *, expected_rating: int, rating: int, comment: str, now: datetime
    ) -> bool:
        """Guarded update: only while the stored rating is still ``expected_rating``."""
        ...

    async def delete(self, review_id: uuid.UUID) -> int | None:
        """Delete and return the rating it had (None when someone deleted it first)."""
        ...

    async def has_ordered(self, user_id: uuid.UUID, product_id: uuid.UUID) -> bool:
        """Whether the user has an order line for the product (a verified purchase)."""
        ...


class FavoriteRepository(Protocol):
    async def add(self, favorite: Favorite) -> bool:
        """Insert unless present (``ON CONFLICT DO NOTHING``); True when this call inserted it."""
        ...

    async def remove(self, user_id: uuid.UUID, product_id: uuid.UUID) -> bool:
        """Delete; True when there was one."""
        ...

    async def remove_all_of_user(self, user_id: uuid.UUID) -> list[uuid.UUID]:
        """Delete a user's favorites; returns the product ids whose count must drop by one."""
        ...


class CartCleanup(Protocol):
    """Cart lines of every buyer that must go with withdrawn listings (a user's own cart is
    emptied through ``CartRepository.clear``)."""

    async def remove_lines_of_products(self, product_ids: Sequence[uuid.UUID]) -> None: ...


class CatalogQueries(Protocol):
    """Read side: views built from rows (joined with users and categories), never entities."""

    async def categories(self) -> list[views.CategoryView]:
        """All categories; ``product_count`` counts live products directly in each one."""
        ...

    async def category_parents(self) -> dict[uuid.UUID, uuid.UUID | None]: ...

    async def product(self, product_id: uuid.UUID) -> views.ProductDetail | None:
        """A live product."""
        ...

    async def product_summaries(self, product_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, views.ProductSummary]:
        """Live products by id, in one statement (for carts, feeds and similar lists)."""
        ...

    async def products(
        self, filters: views.ProductFilter, sort: views.ProductSort, after: Keyset | None, limit: int
    ) -> list[tuple[views.SortKey, views.ProductSummary]]:
        """Up to ``limit`` (at most ``PAGE_MAX + 1``) live products after the keyset position, each with
        its sort key."""
        ...

    async def reviews(self, product_id: uuid.UUID, after: Keyset | None, limit: int) -> list[views.ReviewView]:
        """Newest first."""
        ...

    async def review(self, review_id: uuid.UUID) -> views.ReviewView | None: ...

    async def favorites(self, user_id: uuid.UUID, after: Keyset | None, limit: int) -> list[views.FavoriteView]:
        """Newest first; favorites of withdrawn products are left out."""
        ...

    async def favorite(self, user_id: uuid.UUID, product_id: uuid.UUID) -> views.FavoriteView | None: ...

    async def public_profile(self, user_id: uuid.UUID) -> views.PublicProfile | None:
        """An active user's public face; deleted users are None."""
        ...
