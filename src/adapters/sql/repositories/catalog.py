"""Categories, products, reviews and favorites on SQL (Postgres and SQLite).

Counters on products change by arithmetic in single UPDATEs, so concurrent reviews and favorites
add up; favorites are inserted with ``ON CONFLICT DO NOTHING`` and the row count says whether
this call added one.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from adapters.sql.executor import SqlAdapter
from adapters.sql.mapping import params_of, row_mapper
from adapters.sql.statements import categories as category_sql
from adapters.sql.statements import favorites as favorite_sql
from adapters.sql.statements import products as product_sql
from adapters.sql.statements import reviews as review_sql
from domain.catalog import Category, Favorite, Product, Review, rating_average
from domain.errors import Conflict, DomainError

_category = row_mapper(Category)
_product = row_mapper(
    Product, derived={"rating_avg": lambda row: rating_average(row["rating_sum"], row["review_count"])}
)
_review = row_mapper(Review)


class SqlCategoryRepository(SqlAdapter):
    async def add(self, category: Category) -> None:
        # In a savepoint: a taken slug is retried with the next suffix in the same unit of work.
        async with self.sql.savepoint():
            await self.sql.run(category_sql.INSERT_CATEGORY, **params_of(category))

    async def get(self, category_id: uuid.UUID) -> Category | None:
        row = await self.sql.row(category_sql.CATEGORY_BY_ID, category_id=category_id)
        return _category(row) if row else None

    async def update(self, category: Category) -> None:
        async with self.sql.savepoint():
            await self.sql.run(
                category_sql.UPDATE_CATEGORY,
                category_id=category.id,
                name=category.name,
                slug=category.slug,
                parent_id=category.parent_id,
                updated_at=category.updated_at,
            )

    async def delete(self, category_id: uuid.UUID) -> bool:
        try:
            async with self.sql.savepoint():  # a refused change of the tree leaves the unit of work usable
                return await self.sql.run(category_sql.DELETE_CATEGORY, category_id=category_id) > 0
        except DomainError:
            # A product or sub-category arrived after the in_use check; the foreign keys decide.
            raise Conflict("The category still has products or sub-categories.", field="category_id") from None

    async def slugs_like(self, base: str) -> set[str]:
        rows = await self.sql.rows(category_sql.SLUGS_LIKE, base=base, pattern=f"{base}-%")
        return {row["slug"] for row in rows}

    async def parent_links(self) -> dict[uuid.UUID, uuid.UUID | None]:
        return {row["id"]: row["parent_id"] for row in await self.sql.rows(category_sql.PARENT_LINKS)}

    async def in_use(self, category_id: uuid.UUID) -> bool:
        return bool(await self.sql.value(category_sql.IN_USE, category_id=category_id))

    async def lock_tree(self) -> None:
        await self.sql.value(category_sql.LOCK_TREE)


class SqlProductRepository(SqlAdapter):
    async def add(self, product: Product) -> None:
        counters = {"rating_sum": 0, "review_count": 0, "rating_avg": 0, "favorite_count": 0}
        await self.sql.run(product_sql.INSERT_PRODUCT, **params_of(product, **counters))

    async def get(self, product_id: uuid.UUID) -> Product | None:
        row = await self.sql.row(product_sql.PRODUCT_BY_ID, product_id=product_id)
        return _product(row) if row else None

    async def update_fields(self, product_id: uuid.UUID, changes: Mapping[str, Any], now: datetime) -> bool:
        statement = product_sql.update_fields(frozenset(changes))
        return await self.sql.run(statement, product_id=product_id, now=now, **changes) > 0

    async def withdraw(self, product_id: uuid.UUID, now: datetime) -> bool:
        return await self.sql.run(product_sql.WITHDRAW, product_id=product_id, now=now) > 0

    async def withdraw_all_of_seller(self, seller_id: uuid.UUID, now: datetime) -> list[uuid.UUID]:
        rows = await self.sql.rows(product_sql.WITHDRAW_ALL_OF_SELLER, seller=seller_id, now=now)
        return [row["id"] for row in rows]

    async def apply_rating_change(self, product_id: uuid.UUID, rating_delta: int, count_delta: int) -> None:
        await self.sql.run(
            product_sql.APPLY_RATING_CHANGE, product_id=product_id, rating_delta=rating_delta, count_delta=count_delta
        )

    async def apply_favorite_change(self, product_ids: Sequence[uuid.UUID], delta: int) -> None:
        if product_ids:
            await self.sql.run(product_sql.APPLY_FAVORITE_CHANGE, product_ids=list(product_ids), delta=delta)


class SqlReviewRepository(SqlAdapter):
    async def add(self, review: Review) -> None:
        await self.sql.run(review_sql.INSERT_REVIEW, **params_of(review))

    async def get(self, review_id: uuid.UUID) -> Review | None:
        row = await self.sql.row(review_sql.REVIEW_BY_ID, review_id=review_id)
        return _review(row) if row else None

    async def update(
        self, review_id: uuid.UUID, *, expected_rating: int, rating: int, comment: str, now: datetime
    ) -> bool:
        changed = await self.sql.run(
            review_sql.UPDATE_REVIEW,
            review_id=review_id,
            expected_rating=expected_rating,
            rating=rating,
            comment=comment,
            now=now,
        )
        return changed > 0

    async def delete(self, review_id: uuid.UUID) -> int | None:
        row = await self.sql.row(review_sql.DELETE_REVIEW, review_id=review_id)
        return int(row["rating"]) if row else None

    async def has_ordered(self, user_id: uuid.UUID, product_id: uuid.UUID) -> bool:
        return await self.sql.row(review_sql.HAS_ORDERED, user_id=user_id, product_id=product_id) is not None


class SqlFavoriteRepository(SqlAdapter):
    async def add(self, favorite: Favorite) -> bool:
        return await self.sql.run(favorite_sql.ADD_FAVORITE, **params_of(favorite, updated_at=favorite.created_at)) > 0

    async def remove(self, user_id: uuid.UUID, product_id: uuid.UUID) -> bool:
        return await self.sql.run(favorite_sql.REMOVE_FAVORITE, user=user_id, product=product_id) > 0

    async def remove_all_of_user(self, user_id: uuid.UUID) -> list[uuid.UUID]:
        rows = await self.sql.rows(favorite_sql.REMOVE_ALL_OF_USER, user=user_id)
        return [row["product_id"] for row in rows]


class SqlCartCleanup(SqlAdapter):
    async def remove_lines_of_products(self, product_ids: Sequence[uuid.UUID]) -> None:
        if product_ids:
            await self.sql.run(product_sql.REMOVE_CART_LINES_OF_PRODUCTS, product_ids=list(product_ids))
