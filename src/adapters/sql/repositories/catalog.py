"""Categories, products, reviews and favorites on SQL (Postgres and SQLite).

Counters on products change by arithmetic in single UPDATEs (``rating_sum = rating_sum + :d``),
so concurrent reviews and favorites add up instead of overwriting each other; favorites are
inserted with ``ON CONFLICT DO NOTHING`` and the row count says whether this call added one.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, Numeric, case, cast, delete, exists, func, insert, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from adapters.sql.errors import translate
from adapters.sql.tables import (
    CartItemRow,
    CategoryRow,
    FavoriteRow,
    OrderLineRow,
    ProductRow,
    ReviewRow,
    table_of,
)
from domain.catalog import Category, Favorite, Product, Review, rating_average
from domain.errors import Conflict

C = table_of(CategoryRow)
P = table_of(ProductRow)
R = table_of(ReviewRow)
F = table_of(FavoriteRow)
CI = table_of(CartItemRow)
OL = table_of(OrderLineRow)
WRITABLE = frozenset({"name", "description", "price", "image_url", "stock", "category_id"})
# Any constant works: it only has to be the same for every process touching the category tree.
_TREE_LOCK_KEY = 0x6D6B_7463  # "mktc"


def _rowcount(result: Any) -> int:
    return int(result.rowcount)


def _insert(dialect: str) -> Any:
    """The dialect's INSERT, which knows ``ON CONFLICT``."""
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def average_expression(dialect: str, new_sum: ColumnElement[Any], new_count: ColumnElement[Any]) -> ColumnElement[Any]:
    """rating_avg from the new sum and count, rounded half up to the cent as ``rating_average``
    does: NUMERIC on Postgres, integer cents on SQLite (the Money column's storage there)."""
    if dialect == "postgresql":
        mean = func.round(cast(new_sum, Numeric(14, 4)) / new_count, 2)
        return case((new_count > 0, mean), else_=0)
    cents = cast(func.round(new_sum * 100.0 / new_count), Integer)
    return case((new_count > 0, cents), else_=0)


def _category(row: Any) -> Category:
    return Category(
        id=row.id,
        name=row.name,
        slug=row.slug,
        parent_id=row.parent_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _product(row: Any) -> Product:
    return Product(
        id=row.id,
        seller_id=row.seller_id,
        category_id=row.category_id,
        name=row.name,
        description=row.description,
        price=row.price,
        image_url=row.image_url,
        stock=row.stock,
        created_at=row.created_at,
        updated_at=row.updated_at,
        rating_avg=rating_average(row.rating_sum, row.review_count),
        review_count=row.review_count,
        favorite_count=row.favorite_count,
        withdrawn_at=row.withdrawn_at,
        rating_sum=row.rating_sum,
    )


class SqlCategoryRepository:
    def __init__(self, session: AsyncSession, dialect: str) -> None:
        self.s = session
        self.dialect = dialect

    async def add(self, category: Category) -> None:
        try:
            async with self.s.begin_nested():
                await self.s.execute(
                    insert(C).values(
                        id=category.id,
                        name=category.name,
                        slug=category.slug,
                        parent_id=category.parent_id,
                        created_at=category.created_at,
                        updated_at=category.updated_at,
                    )
                )
        except IntegrityError as error:
            raise translate(error) from None

    async def get(self, category_id: uuid.UUID) -> Category | None:
        row = (await self.s.execute(select(C).where(C.c.id == category_id))).first()
        return _category(row) if row else None

    async def update(self, category: Category) -> None:
        try:
            async with self.s.begin_nested():
                await self.s.execute(
                    update(C)
                    .where(C.c.id == category.id)
                    .values(
                        name=category.name,
                        slug=category.slug,
                        parent_id=category.parent_id,
                        updated_at=category.updated_at,
                    )
                )
        except IntegrityError as error:
            raise translate(error) from None

    async def delete(self, category_id: uuid.UUID) -> bool:
        try:
            async with self.s.begin_nested():
                result = await self.s.execute(delete(C).where(C.c.id == category_id))
        except IntegrityError:
            # A product or sub-category arrived after the in_use check; the foreign keys decide.
            raise Conflict("The category still has products or sub-categories.", field="category_id") from None
        return _rowcount(result) > 0

    async def slugs_like(self, base: str) -> set[str]:
        # Slugs are [a-z0-9-] only, so the base has no LIKE wildcards to escape.
        rows = await self.s.execute(select(C.c.slug).where(or_(C.c.slug == base, C.c.slug.like(f"{base}-%"))))
        return {row.slug for row in rows}

    async def parent_links(self) -> dict[uuid.UUID, uuid.UUID | None]:
        return {row.id: row.parent_id for row in await self.s.execute(select(C.c.id, C.c.parent_id))}

    async def in_use(self, category_id: uuid.UUID) -> bool:
        children = exists().where(C.c.parent_id == category_id)
        products = exists().where(P.c.category_id == category_id)
        row = (await self.s.execute(select(or_(children, products)))).scalar_one()
        return bool(row)

    async def lock_tree(self) -> None:
        if self.dialect == "postgresql":
            await self.s.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _TREE_LOCK_KEY})
        # SQLite: units of work already run one at a time (the process-wide write lock).


class SqlProductRepository:
    def __init__(self, session: AsyncSession, dialect: str) -> None:
        self.s = session
        self.dialect = dialect

    async def add(self, product: Product) -> None:
        try:
            async with self.s.begin_nested():
                await self.s.execute(
                    insert(P).values(
                        id=product.id,
                        seller_id=product.seller_id,
                        category_id=product.category_id,
                        name=product.name,
                        description=product.description,
                        price=product.price,
                        image_url=product.image_url,
                        stock=product.stock,
                        rating_sum=0,
                        review_count=0,
                        rating_avg=0,
                        favorite_count=0,
                        created_at=product.created_at,
                        updated_at=product.updated_at,
                    )
                )
        except IntegrityError as error:
            raise translate(error) from None

    async def get(self, product_id: uuid.UUID) -> Product | None:
        row = (await self.s.execute(select(P).where(P.c.id == product_id, P.c.withdrawn_at.is_(None)))).first()
        return _product(row) if row else None

    async def update_fields(self, product_id: uuid.UUID, changes: Mapping[str, Any], now: datetime) -> bool:
        unknown = set(changes) - WRITABLE
        if unknown:
            raise ValueError(f"not writable: {sorted(unknown)}")
        try:
            async with self.s.begin_nested():
                result = await self.s.execute(
                    update(P).where(P.c.id == product_id, P.c.withdrawn_at.is_(None)).values(**changes, updated_at=now)
                )
        except IntegrityError as error:
            raise translate(error) from None
        return _rowcount(result) > 0

    async def withdraw(self, product_id: uuid.UUID, now: datetime) -> bool:
        result = await self.s.execute(
            update(P).where(P.c.id == product_id, P.c.withdrawn_at.is_(None)).values(withdrawn_at=now, updated_at=now)
        )
        return _rowcount(result) > 0

    async def withdraw_all_of_seller(self, seller_id: uuid.UUID, now: datetime) -> list[uuid.UUID]:
        result = await self.s.execute(
            update(P)
            .where(P.c.seller_id == seller_id, P.c.withdrawn_at.is_(None))
            .values(withdrawn_at=now, updated_at=now)
            .returning(P.c.id)
        )
        return [row.id for row in result]

    async def apply_rating_change(self, product_id: uuid.UUID, rating_delta: int, count_delta: int) -> None:
        new_sum = P.c.rating_sum + rating_delta
        new_count = P.c.review_count + count_delta
        # SET expressions see the old row, so the average is computed from the new sum and count.
        await self.s.execute(
            update(P)
            .where(P.c.id == product_id)
            .values(
                rating_sum=new_sum,
                review_count=new_count,
                rating_avg=average_expression(self.dialect, new_sum, new_count),
                # Counters are not edits of the listing: keep updated_at (the table's onupdate would bump it).
                updated_at=P.c.updated_at,
            )
        )

    async def apply_favorite_change(self, product_ids: Sequence[uuid.UUID], delta: int) -> None:
        if not product_ids:
            return
        await self.s.execute(
            update(P)
            .where(P.c.id.in_(list(product_ids)))
            .values(favorite_count=P.c.favorite_count + delta, updated_at=P.c.updated_at)
        )


def _review(row: Any) -> Review:
    return Review(
        id=row.id,
        product_id=row.product_id,
        author_id=row.author_id,
        rating=row.rating,
        comment=row.comment,
        verified_purchase=row.verified_purchase,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class SqlReviewRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def add(self, review: Review) -> None:
        try:
            async with self.s.begin_nested():
                await self.s.execute(
                    insert(R).values(
                        id=review.id,
                        product_id=review.product_id,
                        author_id=review.author_id,
                        rating=review.rating,
                        comment=review.comment,
                        verified_purchase=review.verified_purchase,
                        created_at=review.created_at,
                        updated_at=review.updated_at,
                    )
                )
        except IntegrityError as error:
            raise translate(error) from None

    async def get(self, review_id: uuid.UUID) -> Review | None:
        row = (await self.s.execute(select(R).where(R.c.id == review_id))).first()
        return _review(row) if row else None

    async def update(
        self, review_id: uuid.UUID, *, expected_rating: int, rating: int, comment: str, now: datetime
    ) -> bool:
        result = await self.s.execute(
            update(R)
            .where(R.c.id == review_id, R.c.rating == expected_rating)
            .values(rating=rating, comment=comment, updated_at=now)
        )
        return _rowcount(result) > 0

    async def delete(self, review_id: uuid.UUID) -> int | None:
        row = (await self.s.execute(delete(R).where(R.c.id == review_id).returning(R.c.rating))).first()
        return int(row.rating) if row else None

    async def has_ordered(self, user_id: uuid.UUID, product_id: uuid.UUID) -> bool:
        found = await self.s.execute(
            select(OL.c.id).where(OL.c.buyer_id == user_id, OL.c.product_id == product_id).limit(1)
        )
        return found.first() is not None


class SqlFavoriteRepository:
    def __init__(self, session: AsyncSession, dialect: str) -> None:
        self.s = session
        self.dialect = dialect

    async def add(self, favorite: Favorite) -> bool:
        stmt = (
            _insert(self.dialect)(F)
            .values(
                id=favorite.id,
                user_id=favorite.user_id,
                product_id=favorite.product_id,
                created_at=favorite.created_at,
                updated_at=favorite.created_at,
            )
            .on_conflict_do_nothing(index_elements=[F.c.user_id, F.c.product_id])
        )
        try:
            async with self.s.begin_nested():
                result = await self.s.execute(stmt)
        except IntegrityError as error:
            raise translate(error) from None
        return _rowcount(result) > 0

    async def remove(self, user_id: uuid.UUID, product_id: uuid.UUID) -> bool:
        result = await self.s.execute(delete(F).where(F.c.user_id == user_id, F.c.product_id == product_id))
        return _rowcount(result) > 0

    async def remove_all_of_user(self, user_id: uuid.UUID) -> list[uuid.UUID]:
        # RETURNING names exactly the rows this statement removed, so counts stay exact even if
        # a favorite is added concurrently.
        result = await self.s.execute(delete(F).where(F.c.user_id == user_id).returning(F.c.product_id))
        return [row.product_id for row in result]


class SqlCartCleanup:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def remove_lines_of_products(self, product_ids: Sequence[uuid.UUID]) -> None:
        if product_ids:
            await self.s.execute(delete(CI).where(CI.c.product_id.in_(list(product_ids))))
