"""The hot catalog reads on Postgres: hand-written SQL on a plain asyncpg pool.

Product detail, listing pages (browse and search) and summaries by id are most of the traffic.
Here they skip SQLAlchemy altogether: one prepared statement per query shape (asyncpg's
statement cache), records turned straight into the view Structs, no transaction around a read.
Everything else, and SQLite, stays on ``SqlCatalogQueries``; the contract tests run both.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from adapters.sql.catalog_queries import SqlCatalogQueries, category_ref
from adapters.sql.database import Database
from adapters.sql.read_pool import PgReadPool
from application.pagination import Keyset
from application.views.catalog import (
    ProductDetail,
    ProductFilter,
    ProductSort,
    ProductSummary,
    SellerRef,
    SortKey,
    rating_out,
)
from domain.catalog import rating_average

_COLUMNS = (
    "p.id, p.seller_id, u.username, p.name, p.price, p.image_url, p.category_id, c.name, c.slug, "
    "p.stock, p.rating_sum, p.review_count, p.favorite_count, p.created_at, p.updated_at"
)
# A listing page's own columns, before the join (see ``listing_sql``).
_PAGE_COLUMNS = (
    "p.id, p.seller_id, p.name, p.price, p.image_url, p.category_id, "
    "p.stock, p.rating_sum, p.review_count, p.favorite_count, p.created_at, p.updated_at"
)
# LEFT JOIN categories: an uncategorised product (category_id NULL) is still listed, category null.
_FROM = "products p JOIN users u ON u.id = p.seller_id LEFT JOIN categories c ON c.id = p.category_id"
# S608: every statement here is assembled from the constants in this module and $n placeholders;
# no value from a request is ever formatted into SQL text.
DETAIL_SQL = f"SELECT {_COLUMNS}, p.description FROM {_FROM} WHERE p.id = $1 AND p.withdrawn_at IS NULL"  # noqa: S608
SUMMARIES_SQL = f"SELECT {_COLUMNS} FROM {_FROM} WHERE p.id = ANY($1::uuid[]) AND p.withdrawn_at IS NULL"  # noqa: S608
_RANK = "ts_rank(p.search_vector, query)"
# sort → (key expression, its SQL type for a bound cursor value, descending?)
_ORDER: dict[ProductSort, tuple[str, str, bool]] = {
    ProductSort.NEWEST: ("p.created_at", "timestamptz", True),
    ProductSort.PRICE_ASC: ("p.price", "numeric", False),
    ProductSort.PRICE_DESC: ("p.price", "numeric", True),
    ProductSort.RATING: ("p.rating_avg", "numeric", True),
    ProductSort.RELEVANCE: (_RANK, "float8", True),  # ts_rank is real; float8 holds it exactly
}


def _summary(r: Any) -> ProductSummary:
    return ProductSummary(
        r[0], SellerRef(r[1], r[2]), r[3], r[4], r[5], category_ref(r[6], r[7], r[8]), r[9],
        rating_out(rating_average(r[10], r[11])), r[11], r[12], r[13], r[14],
    )  # fmt: skip


def _detail(r: Any) -> ProductDetail:
    return ProductDetail(
        r[0], SellerRef(r[1], r[2]), r[3], r[15], r[4], r[5], category_ref(r[6], r[7], r[8]), r[9],
        rating_out(rating_average(r[10], r[11])), r[11], r[12], r[13], r[14],
    )  # fmt: skip


def listing_sql(filters: ProductFilter, sort: ProductSort, after: Keyset | None, limit: int) -> tuple[str, list[Any]]:
    """The one statement behind a page of GET /api/products and its arguments.

    Each filter adds its own condition (no ``$1 IS NULL OR ...``), so every shape gets a plan
    that range-scans its partial ``(category, key, id)`` or ``(key, id)`` index; the cursor is a
    ``(key, id)`` row comparison. The page is cut from ``products`` alone and only its rows are
    joined with sellers and categories: a search ranks thousands of matches, and joining them
    all first (hashing every user) doubled its cost.
    """
    args: list[Any] = []

    def arg(value: Any, sql_type: str) -> str:
        args.append(value)
        return f"${len(args)}::{sql_type}"

    where = ["p.withdrawn_at IS NULL"]
    source = "products p"
    if filters.q is not None:
        source += f", websearch_to_tsquery('english'::regconfig, {arg(filters.q, 'text')}) query"
        where.append("p.search_vector @@ query")
    if filters.category_ids is not None:
        ids = sorted(filters.category_ids)
        where.append(
            f"p.category_id = {arg(ids[0], 'uuid')}" if len(ids) == 1 else f"p.category_id = ANY({arg(ids, 'uuid[]')})"
        )
    if filters.seller_id is not None:
        where.append(f"p.seller_id = {arg(filters.seller_id, 'uuid')}")
    if filters.min_price is not None:
        where.append(f"p.price >= {arg(filters.min_price, 'numeric')}")
    if filters.max_price is not None:
        where.append(f"p.price <= {arg(filters.max_price, 'numeric')}")
    if filters.in_stock is not None:
        where.append("p.stock > 0" if filters.in_stock else "p.stock = 0")
    if sort is ProductSort.RELEVANCE and filters.q is None:
        raise ValueError("relevance needs q")
    key, key_type, descending = _ORDER[sort]
    if after is not None:
        where.append(f"({key}, p.id) {'<' if descending else '>'} ({arg(after[0], key_type)}, {arg(after[1], 'uuid')})")
    direction = "DESC" if descending else "ASC"
    page = (
        f"SELECT {_PAGE_COLUMNS}, {key} AS sort_key FROM {source} WHERE {' AND '.join(where)} "  # noqa: S608
        f"ORDER BY {key} {direction}, p.id {direction} LIMIT {arg(limit, 'int')}"
    )
    sql = (
        f"SELECT {_COLUMNS}, p.sort_key FROM ({page}) p "  # noqa: S608
        "JOIN users u ON u.id = p.seller_id LEFT JOIN categories c ON c.id = p.category_id "
        f"ORDER BY p.sort_key {direction}, p.id {direction}"
    )
    return sql, args


class PgCatalogQueries(SqlCatalogQueries):
    """``SqlCatalogQueries`` with detail, listing pages and summaries on raw asyncpg."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        if db.reads is None:
            raise ValueError("PgCatalogQueries needs a pooled Postgres database")
        self.reads: PgReadPool = db.reads

    async def product(self, product_id: uuid.UUID) -> ProductDetail | None:
        row = await self.reads.fetchrow(DETAIL_SQL, product_id)
        return _detail(row) if row is not None else None

    async def product_summaries(self, product_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, ProductSummary]:
        if not product_ids:
            return {}
        rows = await self.reads.fetch(SUMMARIES_SQL, list(product_ids))
        return {row[0]: _summary(row) for row in rows}

    async def products(
        self, filters: ProductFilter, sort: ProductSort, after: Keyset | None, limit: int
    ) -> list[tuple[SortKey, ProductSummary]]:
        if filters.category_ids is not None and not filters.category_ids:
            return []
        sql, args = listing_sql(filters, sort, after, limit)
        rows = await self.reads.fetch(sql, *args)
        return [(row[15], _summary(row)) for row in rows]
