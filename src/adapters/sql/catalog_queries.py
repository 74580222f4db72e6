"""Catalog reads on SQL: views from rows, one statement per page, outside any transaction.

Listings are keyset-paginated over ``(sort key, id)`` row comparisons that the partial
``WHERE withdrawn_at IS NULL`` indexes serve. Full-text search is a Postgres ``tsvector`` (GIN,
``websearch_to_tsquery``, ``ts_rank``) or a SQLite FTS5 table (``MATCH`` with every user word
quoted, ``bm25``). ``ts_rank`` depends only on the row and the query, so relevance cursors are
stable on Postgres; ``bm25`` also weighs corpus statistics, so on SQLite a relevance walk is
best-effort while products are being added or edited (other sorts are exact on both).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Any

from adapters.sql.executor import Executor, Row, page_rows
from adapters.sql.mapping import row_mapper
from adapters.sql.statements import categories as category_sql
from adapters.sql.statements import favorites as favorite_sql
from adapters.sql.statements import products as product_sql
from adapters.sql.statements import reviews as review_sql
from application.pagination import Keyset
from application.views import catalog as views
from domain.catalog import rating_average

_WORD = re.compile(r"\w+", re.UNICODE)
MAX_SEARCH_WORDS = 16


def fts5_query(q: str) -> str | None:
    """A safe FTS5 query: every word quoted (so no operator, column filter or stray quote gets
    through) and ANDed; None when ``q`` has no words at all."""
    words = _WORD.findall(q)[:MAX_SEARCH_WORDS]
    return " ".join(f'"{word}"' for word in words) or None


def _rating(row: Row) -> float | None:
    return views.rating_out(rating_average(row["rating_sum"], row["review_count"]))


_summary = row_mapper(views.ProductSummary, derived={"rating_avg": _rating})
_detail = row_mapper(views.ProductDetail, derived={"rating_avg": _rating})
_review = row_mapper(views.ReviewView)
_favorite = row_mapper(views.FavoriteView, derived={"product": _summary, "created_at": lambda row: row["favorited_at"]})
_category_view = row_mapper(views.CategoryView)
_profile = row_mapper(views.PublicProfile, derived={"rating_avg": _rating})


class SqlCatalogQueries:
    def __init__(self, executor: Executor, dialect: str) -> None:
        self.sql = executor
        self.dialect = dialect

    async def categories(self) -> list[views.CategoryView]:
        return [_category_view(row) for row in await self.sql.rows(category_sql.CATEGORY_VIEWS)]

    async def category_parents(self) -> dict[uuid.UUID, uuid.UUID | None]:
        return {row["id"]: row["parent_id"] for row in await self.sql.rows(category_sql.PARENT_LINKS)}

    async def product(self, product_id: uuid.UUID) -> views.ProductDetail | None:
        row = await self.sql.row(product_sql.PRODUCT_DETAIL, product_id=product_id)
        return _detail(row) if row else None

    async def product_summaries(self, product_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, views.ProductSummary]:
        if not product_ids:
            return {}
        rows = await self.sql.rows(product_sql.PRODUCT_SUMMARIES, product_ids=list(product_ids))
        return {row["id"]: _summary(row) for row in rows}

    def listing(
        self, filters: views.ProductFilter, sort: views.ProductSort, after: Keyset | None
    ) -> tuple[Any, dict[str, Any]] | None:
        """The statement behind a page of GET /api/products and its parameters (but ``limit``);
        None when nothing can match (public for EXPLAIN benchmarks)."""
        params: dict[str, Any] = {}
        category = 0
        if filters.category_ids is not None:
            ids = sorted(filters.category_ids)
            if not ids:
                return None
            if len(ids) == 1:
                category, params["category_id"] = 1, ids[0]
            else:
                category, params["category_ids"] = 2, ids
        if filters.seller_id is not None:
            params["seller_id"] = filters.seller_id
        if filters.min_price is not None:
            params["min_price"] = filters.min_price
        if filters.max_price is not None:
            params["max_price"] = filters.max_price
        if filters.q is not None:
            if self.dialect == "postgresql":
                params["q"] = filters.q
            elif (match := fts5_query(filters.q)) is not None:
                params["match"] = match
            else:
                return None  # no words to search for
        if after is not None:
            params.update(after_key=after[0], after_id=after[1])
        shape = product_sql.ListingShape(
            dialect=self.dialect,
            sort=sort,
            search=filters.q is not None,
            category=category,
            seller=filters.seller_id is not None,
            min_price=filters.min_price is not None,
            max_price=filters.max_price is not None,
            in_stock=filters.in_stock,
            after=after is not None,
        )
        return product_sql.listing(shape), params

    async def products(
        self, filters: views.ProductFilter, sort: views.ProductSort, after: Keyset | None, limit: int
    ) -> list[tuple[views.SortKey, views.ProductSummary]]:
        if limit > product_sql.LISTING_CAP:  # the statement reads at most that many rows
            raise ValueError(f"a page of products has at most {product_sql.LISTING_CAP} rows, not {limit}")
        statement = self.listing(filters, sort, after)
        if statement is None:
            return []
        listing, params = statement
        rows = await self.sql.rows(listing, limit=limit, **params)
        return [(row["sort_key"], _summary(row)) for row in rows]

    async def reviews(self, product_id: uuid.UUID, after: Keyset | None, limit: int) -> list[views.ReviewView]:
        rows = await page_rows(self.sql, review_sql.REVIEWS_OF_PRODUCT, after, product_id=product_id, limit=limit)
        return [_review(row) for row in rows]

    async def review(self, review_id: uuid.UUID) -> views.ReviewView | None:
        row = await self.sql.row(review_sql.REVIEW_VIEW, review_id=review_id)
        return _review(row) if row else None

    async def favorites(self, user_id: uuid.UUID, after: Keyset | None, limit: int) -> list[views.FavoriteView]:
        rows = await page_rows(self.sql, favorite_sql.FAVORITES_OF_USER, after, user_id=user_id, limit=limit)
        return [_favorite(row) for row in rows]

    async def favorite(self, user_id: uuid.UUID, product_id: uuid.UUID) -> views.FavoriteView | None:
        row = await self.sql.row(favorite_sql.FAVORITE_VIEW, user_id=user_id, product_id=product_id)
        return _favorite(row) if row else None

    async def public_profile(self, user_id: uuid.UUID) -> views.PublicProfile | None:
        row = await self.sql.row(product_sql.PUBLIC_PROFILE, user_id=user_id)
        return _profile(row) if row else None
