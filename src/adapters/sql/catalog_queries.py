"""Catalog reads on SQL: views from rows in one statement per page, joined with users and categories.

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

from sqlalchemy import (
    Float,
    Select,
    and_,
    column,
    false,
    func,
    literal,
    literal_column,
    select,
    table,
    tuple_,
)
from sqlalchemy.sql.elements import ColumnElement

from adapters.sql.database import Database
from adapters.sql.tables import CategoryRow, FavoriteRow, ProductRow, ReviewRow, UserRow, table_of
from application.pagination import Keyset
from application.views.catalog import (
    CategoryRef,
    CategoryView,
    FavoriteView,
    ProductDetail,
    ProductFilter,
    ProductSort,
    ProductSummary,
    PublicProfile,
    ReviewView,
    SellerRef,
    SortKey,
    rating_out,
)
from domain.catalog import rating_average

P = table_of(ProductRow)
U = table_of(UserRow)
C = table_of(CategoryRow)
R = table_of(ReviewRow)
F = table_of(FavoriteRow)
FTS = table("products_fts", column("rowid"))
_WORD = re.compile(r"\w+", re.UNICODE)
MAX_SEARCH_WORDS = 16

SUMMARY_COLUMNS = (
    P.c.id,
    P.c.seller_id,
    U.c.username.label("seller_username"),
    P.c.name,
    P.c.price,
    P.c.image_url,
    P.c.category_id,
    C.c.name.label("category_name"),
    C.c.slug.label("category_slug"),
    P.c.stock,
    P.c.rating_sum,
    P.c.review_count,
    P.c.favorite_count,
    P.c.created_at,
    P.c.updated_at,
)
# (sort column, descending?) for each plain sort; relevance is built per dialect.
_ORDER = {
    ProductSort.NEWEST: (P.c.created_at, True),
    ProductSort.PRICE_ASC: (P.c.price, False),
    ProductSort.PRICE_DESC: (P.c.price, True),
    ProductSort.RATING: (P.c.rating_avg, True),
}


def fts5_query(q: str) -> str | None:
    """A safe FTS5 query: every word quoted (so no operator, column filter or stray quote gets
    through) and ANDed; None when ``q`` has no words at all."""
    words = _WORD.findall(q)[:MAX_SEARCH_WORDS]
    return " ".join(f'"{word}"' for word in words) or None


def category_ref(category_id: uuid.UUID | None, name: str | None, slug: str | None) -> CategoryRef | None:
    """A product's category from its (left-joined) columns; None for an uncategorised product."""
    return CategoryRef(id=category_id, name=name or "", slug=slug or "") if category_id is not None else None


def _rating(row: Any) -> float | None:
    return rating_out(rating_average(row.rating_sum, row.review_count))


def _summary(row: Any) -> ProductSummary:
    return ProductSummary(
        id=row.id,
        seller=SellerRef(id=row.seller_id, username=row.seller_username),
        name=row.name,
        price=row.price,
        image_url=row.image_url,
        category=category_ref(row.category_id, row.category_name, row.category_slug),
        stock=row.stock,
        rating_avg=_rating(row),
        review_count=row.review_count,
        favorite_count=row.favorite_count,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _detail(row: Any) -> ProductDetail:
    return ProductDetail(
        id=row.id,
        seller=SellerRef(id=row.seller_id, username=row.seller_username),
        name=row.name,
        description=row.description,
        price=row.price,
        image_url=row.image_url,
        category=category_ref(row.category_id, row.category_name, row.category_slug),
        stock=row.stock,
        rating_avg=_rating(row),
        review_count=row.review_count,
        favorite_count=row.favorite_count,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _review(row: Any) -> ReviewView:
    return ReviewView(
        id=row.id,
        product_id=row.product_id,
        author=SellerRef(id=row.author_id, username=row.author_username),
        rating=row.rating,
        comment=row.comment,
        verified_purchase=row.verified_purchase,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _keyset(
    key: ColumnElement[Any], row_id: ColumnElement[Any], after: Keyset | None, descending: bool
) -> ColumnElement[bool]:
    """``(key, id) < after`` (or ``>``) as one row comparison the (key, id) indexes range-scan;
    bound values carry the columns' types (Money as cents on SQLite, UTC datetimes, GUIDs)."""
    assert after is not None
    bound = tuple_(literal(after[0], key.type), literal(after[1], row_id.type))
    return tuple_(key, row_id) < bound if descending else tuple_(key, row_id) > bound


def _products_from() -> Any:
    return P.join(U, U.c.id == P.c.seller_id).outerjoin(C, C.c.id == P.c.category_id)  # uncategorised too


class SqlCatalogQueries:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def _all(self, stmt: Any) -> list[Any]:
        async with self.db.read_engine.connect() as conn:
            return list(await conn.execute(stmt))

    async def _first(self, stmt: Any) -> Any:
        async with self.db.read_engine.connect() as conn:
            return (await conn.execute(stmt)).first()

    async def categories(self) -> list[CategoryView]:
        counts = (
            select(P.c.category_id, func.count().label("n"))
            .where(P.c.withdrawn_at.is_(None))
            .group_by(P.c.category_id)
            .subquery()
        )
        stmt = (
            select(C.c.id, C.c.name, C.c.slug, C.c.parent_id, func.coalesce(counts.c.n, 0).label("n"))
            .select_from(C.outerjoin(counts, counts.c.category_id == C.c.id))
            .order_by(C.c.name, C.c.id)
        )
        return [
            CategoryView(id=r.id, name=r.name, slug=r.slug, parent_id=r.parent_id, product_count=int(r.n))
            for r in await self._all(stmt)
        ]

    async def category_parents(self) -> dict[uuid.UUID, uuid.UUID | None]:
        return {r.id: r.parent_id for r in await self._all(select(C.c.id, C.c.parent_id))}

    async def product(self, product_id: uuid.UUID) -> ProductDetail | None:
        stmt = (
            select(*SUMMARY_COLUMNS, P.c.description)
            .select_from(_products_from())
            .where(P.c.id == product_id, P.c.withdrawn_at.is_(None))
        )
        row = await self._first(stmt)
        return _detail(row) if row else None

    async def product_summaries(self, product_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, ProductSummary]:
        if not product_ids:
            return {}
        stmt = (
            select(*SUMMARY_COLUMNS)
            .select_from(_products_from())
            .where(P.c.id.in_(list(product_ids)), P.c.withdrawn_at.is_(None))
        )
        return {row.id: _summary(row) for row in await self._all(stmt)}

    def listing(self, filters: ProductFilter, sort: ProductSort, after: Keyset | None, limit: int) -> Select[Any]:
        """The one statement behind a page of GET /api/products (public for EXPLAIN benchmarks)."""
        stmt = select(*SUMMARY_COLUMNS).select_from(_products_from()).where(P.c.withdrawn_at.is_(None))
        if filters.category_ids is not None:
            stmt = stmt.where(P.c.category_id.in_(sorted(filters.category_ids)))
        if filters.seller_id is not None:
            stmt = stmt.where(P.c.seller_id == filters.seller_id)
        if filters.min_price is not None:
            stmt = stmt.where(P.c.price >= filters.min_price)
        if filters.max_price is not None:
            stmt = stmt.where(P.c.price <= filters.max_price)
        if filters.in_stock is True:
            stmt = stmt.where(P.c.stock > 0)
        elif filters.in_stock is False:
            stmt = stmt.where(P.c.stock == 0)
        rank: ColumnElement[Any] | None = None
        if filters.q is not None:
            stmt, rank = self._search(stmt, filters.q)
        if sort is ProductSort.RELEVANCE:
            if rank is None:
                raise ValueError("relevance needs q")
            key, descending = rank, True
        else:
            key, descending = _ORDER[sort]
        if after is not None:
            stmt = stmt.where(_keyset(key, P.c.id, after, descending))
        order = (key.desc(), P.c.id.desc()) if descending else (key.asc(), P.c.id.asc())
        stmt = stmt.order_by(*order)
        return stmt.add_columns(key.label("sort_key")).limit(limit)

    def _search(self, stmt: Select[Any], q: str) -> tuple[Select[Any], ColumnElement[Any]]:
        if self.db.is_postgres:
            vector: ColumnElement[Any] = literal_column("products.search_vector")
            query = func.websearch_to_tsquery(literal_column("'english'::regconfig"), q)
            # ts_rank is real; bound cursor values are compared as float8, which holds it exactly.
            rank: ColumnElement[Any] = func.ts_rank(vector, query, type_=Float)
            return stmt.where(vector.op("@@")(query)), rank
        match = fts5_query(q)
        if match is None:
            return stmt.where(false()), literal(0.0, Float)
        rowid: ColumnElement[Any] = literal_column("products.rowid")
        stmt = stmt.join(FTS, FTS.c.rowid == rowid).where(literal_column("products_fts").op("MATCH")(match))
        # bm25 is "lower is better"; negated so every sort here is (key DESC, id DESC). Name
        # matches weigh ten times description matches.
        return stmt, (-func.bm25(literal_column("products_fts"), 10.0, 1.0)).cast(Float)

    async def products(
        self, filters: ProductFilter, sort: ProductSort, after: Keyset | None, limit: int
    ) -> list[tuple[SortKey, ProductSummary]]:
        if filters.category_ids is not None and not filters.category_ids:
            return []
        rows = await self._all(self.listing(filters, sort, after, limit))
        return [(row.sort_key, _summary(row)) for row in rows]

    def _reviews(self) -> Select[Any]:
        return select(
            R.c.id,
            R.c.product_id,
            R.c.author_id,
            U.c.username.label("author_username"),
            R.c.rating,
            R.c.comment,
            R.c.verified_purchase,
            R.c.created_at,
            R.c.updated_at,
        ).select_from(R.join(U, U.c.id == R.c.author_id))

    async def reviews(self, product_id: uuid.UUID, after: Keyset | None, limit: int) -> list[ReviewView]:
        stmt = self._reviews().where(R.c.product_id == product_id)
        if after is not None:
            stmt = stmt.where(_keyset(R.c.created_at, R.c.id, after, True))
        stmt = stmt.order_by(R.c.created_at.desc(), R.c.id.desc()).limit(limit)
        return [_review(row) for row in await self._all(stmt)]

    async def review(self, review_id: uuid.UUID) -> ReviewView | None:
        row = await self._first(self._reviews().where(R.c.id == review_id))
        return _review(row) if row else None

    def _favorites(self) -> Select[Any]:
        return (
            select(
                *SUMMARY_COLUMNS,
                F.c.id.label("favorite_id"),
                F.c.created_at.label("favorited_at"),
            )
            .select_from(F.join(_products_from(), P.c.id == F.c.product_id))
            .where(P.c.withdrawn_at.is_(None))
        )

    @staticmethod
    def _favorite(row: Any) -> FavoriteView:
        return FavoriteView(product=_summary(row), created_at=row.favorited_at, favorite_id=row.favorite_id)

    async def favorites(self, user_id: uuid.UUID, after: Keyset | None, limit: int) -> list[FavoriteView]:
        stmt = self._favorites().where(F.c.user_id == user_id)
        if after is not None:
            stmt = stmt.where(_keyset(F.c.created_at, F.c.id, after, True))
        stmt = stmt.order_by(F.c.created_at.desc(), F.c.id.desc()).limit(limit)
        return [self._favorite(row) for row in await self._all(stmt)]

    async def favorite(self, user_id: uuid.UUID, product_id: uuid.UUID) -> FavoriteView | None:
        row = await self._first(self._favorites().where(F.c.user_id == user_id, F.c.product_id == product_id))
        return self._favorite(row) if row else None

    async def public_profile(self, user_id: uuid.UUID) -> PublicProfile | None:
        live = and_(P.c.seller_id == U.c.id, P.c.withdrawn_at.is_(None))
        stmt = (
            select(
                U.c.id,
                U.c.username,
                U.c.created_at,
                func.count(P.c.id).label("product_count"),
                func.coalesce(func.sum(P.c.rating_sum), 0).label("rating_sum"),
                func.coalesce(func.sum(P.c.review_count), 0).label("review_count"),
            )
            .select_from(U.outerjoin(P, live))
            .where(U.c.id == user_id, U.c.deleted_at.is_(None))
            .group_by(U.c.id, U.c.username, U.c.created_at)
        )
        row = await self._first(stmt)
        if row is None:
            return None
        return PublicProfile(
            id=row.id,
            username=row.username,
            created_at=row.created_at,
            product_count=int(row.product_count),
            rating_avg=rating_out(rating_average(int(row.rating_sum), int(row.review_count))),
        )
