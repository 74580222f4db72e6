"""In-memory categories, products, reviews, favorites and catalog queries (twins of the SQL ones).

Tables hold domain entities keyed by id: ``categories`` -> Category, ``products`` -> Product,
``reviews`` -> Review, ``favorites`` -> Favorite; carts are ``cart_items`` -> CartLine and
orders ``orders`` -> Order (with its lines). Sorting, keysets and rounding follow the SQL
adapters so the same contract tests pass on all three.
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from adapters.memory.store import MemoryStore, view_of
from application.pagination import Keyset
from application.views import catalog as views
from domain.catalog import Category, Favorite, Product, Review, rating_average
from domain.errors import Conflict, RuleViolation

WRITABLE = frozenset({"name", "description", "price", "image_url", "stock", "category_id"})
_WORD = re.compile(r"\w+", re.UNICODE)


class MemoryCategoryRepository:
    def __init__(self, store: MemoryStore) -> None:
        self.rows: dict[uuid.UUID, Category] = store.table("categories")
        self.products: dict[uuid.UUID, Product] = store.table("products")

    def _check(self, category: Category) -> None:
        if any(other.slug == category.slug and other.id != category.id for other in self.rows.values()):
            raise Conflict("A category with that slug exists.", field="slug")
        if category.parent_id is not None and category.parent_id not in self.rows:
            raise RuleViolation("No such parent category.", field="parent_id")

    async def add(self, category: Category) -> None:
        self._check(category)
        self.rows[category.id] = copy.copy(category)

    async def get(self, category_id: uuid.UUID) -> Category | None:
        found = self.rows.get(category_id)
        return copy.copy(found) if found else None

    async def update(self, category: Category) -> None:
        self._check(category)
        self.rows[category.id] = copy.copy(category)

    async def delete(self, category_id: uuid.UUID) -> bool:
        if await self.in_use(category_id):
            raise Conflict("The category still has products or sub-categories.", field="category_id")
        return self.rows.pop(category_id, None) is not None

    async def slugs_like(self, base: str) -> set[str]:
        return {c.slug for c in self.rows.values() if c.slug == base or c.slug.startswith(base + "-")}

    async def parent_links(self) -> dict[uuid.UUID, uuid.UUID | None]:
        return {c.id: c.parent_id for c in self.rows.values()}

    async def in_use(self, category_id: uuid.UUID) -> bool:
        return any(c.parent_id == category_id for c in self.rows.values()) or any(
            p.category_id == category_id for p in self.products.values()
        )

    async def lock_tree(self) -> None:
        """Memory units of work already run one at a time."""


class MemoryProductRepository:
    def __init__(self, store: MemoryStore) -> None:
        self.rows: dict[uuid.UUID, Product] = store.table("products")
        self.categories: dict[uuid.UUID, Category] = store.table("categories")

    async def add(self, product: Product) -> None:
        if product.category_id is not None and product.category_id not in self.categories:
            raise RuleViolation("No such category.", field="category_id")
        stored = copy.copy(product)
        stored.rating_sum, stored.review_count, stored.rating_avg, stored.favorite_count = 0, 0, None, 0
        self.rows[product.id] = stored

    def _live(self, product_id: uuid.UUID) -> Product | None:
        product = self.rows.get(product_id)
        return product if product is not None and product.withdrawn_at is None else None

    async def get(self, product_id: uuid.UUID) -> Product | None:
        product = self._live(product_id)
        return copy.copy(product) if product else None

    async def update_fields(self, product_id: uuid.UUID, changes: Mapping[str, Any], now: datetime) -> bool:
        unknown = set(changes) - WRITABLE
        if unknown:
            raise ValueError(f"not writable: {sorted(unknown)}")
        product = self._live(product_id)
        if product is None:
            return False
        if changes.get("category_id") is not None and changes["category_id"] not in self.categories:
            raise RuleViolation("No such category.", field="category_id")
        for name, value in changes.items():
            setattr(product, name, value)
        product.updated_at = now
        return True

    async def withdraw(self, product_id: uuid.UUID, now: datetime) -> bool:
        product = self._live(product_id)
        if product is None:
            return False
        product.withdrawn_at = now
        product.updated_at = now
        return True

    async def withdraw_all_of_seller(self, seller_id: uuid.UUID, now: datetime) -> list[uuid.UUID]:
        withdrawn = []
        for product in self.rows.values():
            if product.seller_id == seller_id and product.withdrawn_at is None:
                product.withdrawn_at = now
                product.updated_at = now
                withdrawn.append(product.id)
        return withdrawn

    async def apply_rating_change(self, product_id: uuid.UUID, rating_delta: int, count_delta: int) -> None:
        product = self.rows.get(product_id)
        if product is None:
            return
        product.rating_sum += rating_delta
        product.review_count += count_delta
        if product.review_count < 0:
            raise Conflict("review_count would go negative.")
        product.rating_avg = rating_average(product.rating_sum, product.review_count)

    async def apply_favorite_change(self, product_ids: Sequence[uuid.UUID], delta: int) -> None:
        for product_id in product_ids:
            product = self.rows.get(product_id)
            if product is not None:
                product.favorite_count += delta


class MemoryReviewRepository:
    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self.rows: dict[uuid.UUID, Review] = store.table("reviews")

    async def add(self, review: Review) -> None:
        if any(r.product_id == review.product_id and r.author_id == review.author_id for r in self.rows.values()):
            raise Conflict("You have already reviewed this product.", field="product_id")
        self.rows[review.id] = copy.copy(review)

    async def get(self, review_id: uuid.UUID) -> Review | None:
        found = self.rows.get(review_id)
        return copy.copy(found) if found else None

    async def update(
        self, review_id: uuid.UUID, *, expected_rating: int, rating: int, comment: str, now: datetime
    ) -> bool:
        review = self.rows.get(review_id)
        if review is None or review.rating != expected_rating:
            return False
        review.rating, review.comment, review.updated_at = rating, comment, now
        return True

    async def delete(self, review_id: uuid.UUID) -> int | None:
        review = self.rows.pop(review_id, None)
        return review.rating if review else None

    async def has_ordered(self, user_id: uuid.UUID, product_id: uuid.UUID) -> bool:
        for order in self.store.table("orders").values():
            if getattr(order, "buyer_id", None) == user_id and any(
                line.product_id == product_id for line in getattr(order, "lines", ())
            ):
                return True
        return False


class MemoryFavoriteRepository:
    def __init__(self, store: MemoryStore) -> None:
        self.rows: dict[uuid.UUID, Favorite] = store.table("favorites")

    async def add(self, favorite: Favorite) -> bool:
        if any(f.user_id == favorite.user_id and f.product_id == favorite.product_id for f in self.rows.values()):
            return False
        self.rows[favorite.id] = copy.copy(favorite)
        return True

    async def remove(self, user_id: uuid.UUID, product_id: uuid.UUID) -> bool:
        for key, favorite in list(self.rows.items()):
            if favorite.user_id == user_id and favorite.product_id == product_id:
                del self.rows[key]
                return True
        return False

    async def remove_all_of_user(self, user_id: uuid.UUID) -> list[uuid.UUID]:
        dropped = [key for key, favorite in self.rows.items() if favorite.user_id == user_id]
        return [self.rows.pop(key).product_id for key in dropped]


class MemoryCartCleanup:
    def __init__(self, store: MemoryStore) -> None:
        self.rows: dict[uuid.UUID, Any] = store.table("cart_items")

    async def remove_lines_of_products(self, product_ids: Sequence[uuid.UUID]) -> None:
        gone = set(product_ids)
        for key in [k for k, line in self.rows.items() if line.product_id in gone]:
            del self.rows[key]


def _words(text: str) -> list[str]:
    """Lower-cased words with a crude plural/suffix fold, standing in for the databases' stemmers."""
    out = []
    for word in _WORD.findall(text.lower()):
        for suffix in ("ing", "es", "s"):
            if len(word) > len(suffix) + 2 and word.endswith(suffix):
                word = word[: -len(suffix)]
                break
        out.append(word)
    return out


def search_rank(product: Product, q: str) -> float | None:
    """None when some word of ``q`` is missing; otherwise name hits weigh ten times description hits."""
    wanted = _words(q)
    if not wanted:
        return None
    name, description = _words(product.name), _words(product.description)
    if not all(word in name or word in description for word in wanted):
        return None
    return float(sum(10 * name.count(word) + description.count(word) for word in wanted))


class MemoryCatalogQueries:
    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    def _table(self, name: str) -> dict[Any, Any]:
        return self.store.table(name)

    def _summary(self, p: Product) -> views.ProductSummary:
        seller = self._table("users")[p.seller_id]
        category = self._table("categories").get(p.category_id) if p.category_id is not None else None
        return view_of(
            views.ProductSummary,
            p,
            seller=views.SellerRef(id=seller.id, username=seller.username),
            category=views.CategoryRef(id=category.id, name=category.name, slug=category.slug) if category else None,
            rating_avg=views.rating_out(rating_average(p.rating_sum, p.review_count)),
        )

    def _live(self) -> list[Product]:
        return [p for p in self._table("products").values() if p.withdrawn_at is None]

    async def categories(self) -> list[views.CategoryView]:
        counts: dict[uuid.UUID, int] = {}
        for product in self._live():
            if product.category_id is not None:
                counts[product.category_id] = counts.get(product.category_id, 0) + 1
        rows = sorted(self._table("categories").values(), key=lambda c: (c.name, c.id))
        return [
            views.CategoryView(
                id=c.id, name=c.name, slug=c.slug, parent_id=c.parent_id, product_count=counts.get(c.id, 0)
            )
            for c in rows
        ]

    async def category_parents(self) -> dict[uuid.UUID, uuid.UUID | None]:
        return {c.id: c.parent_id for c in self._table("categories").values()}

    async def product(self, product_id: uuid.UUID) -> views.ProductDetail | None:
        p = self._table("products").get(product_id)
        if p is None or p.withdrawn_at is not None:
            return None
        return view_of(views.ProductDetail, self._summary(p), description=p.description)

    async def product_summaries(self, product_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, views.ProductSummary]:
        products = self._table("products")
        return {
            i: self._summary(products[i]) for i in product_ids if i in products and products[i].withdrawn_at is None
        }

    async def products(
        self, filters: views.ProductFilter, sort: views.ProductSort, after: Keyset | None, limit: int
    ) -> list[tuple[views.SortKey, views.ProductSummary]]:
        keyed: list[tuple[views.SortKey, Product]] = []
        for p in self._live():
            if filters.category_ids is not None and p.category_id not in filters.category_ids:
                continue
            if filters.seller_id is not None and p.seller_id != filters.seller_id:
                continue
            if filters.min_price is not None and p.price < filters.min_price:
                continue
            if filters.max_price is not None and p.price > filters.max_price:
                continue
            if filters.in_stock is not None and (p.stock > 0) != filters.in_stock:
                continue
            rank = search_rank(p, filters.q) if filters.q is not None else 0.0
            if rank is None:
                continue
            keyed.append((self._key(p, sort, rank), p))
        descending = sort is not views.ProductSort.PRICE_ASC
        position: Callable[[tuple[views.SortKey, Product]], tuple[Any, uuid.UUID]] = lambda kp: (kp[0], kp[1].id)  # noqa: E731
        if after is not None:
            keyed = [kp for kp in keyed if (position(kp) < after if descending else position(kp) > after)]
        keyed.sort(key=position, reverse=descending)
        return [(key, self._summary(p)) for key, p in keyed[:limit]]

    @staticmethod
    def _key(p: Product, sort: views.ProductSort, rank: float) -> views.SortKey:
        if sort is views.ProductSort.NEWEST:
            return p.created_at
        if sort in (views.ProductSort.PRICE_ASC, views.ProductSort.PRICE_DESC):
            return p.price
        if sort is views.ProductSort.RATING:
            return rating_average(p.rating_sum, p.review_count) or Decimal("0.00")
        return rank

    def _review(self, r: Review) -> views.ReviewView:
        author = self._table("users")[r.author_id]
        return view_of(views.ReviewView, r, author=views.SellerRef(id=author.id, username=author.username))

    async def reviews(self, product_id: uuid.UUID, after: Keyset | None, limit: int) -> list[views.ReviewView]:
        rows = [r for r in self._table("reviews").values() if r.product_id == product_id]
        if after is not None:
            rows = [r for r in rows if (r.created_at, r.id) < after]
        rows.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        return [self._review(r) for r in rows[:limit]]

    async def review(self, review_id: uuid.UUID) -> views.ReviewView | None:
        r = self._table("reviews").get(review_id)
        return self._review(r) if r else None

    def _favorite_views(self, user_id: uuid.UUID) -> list[views.FavoriteView]:
        products = self._table("products")
        return [
            views.FavoriteView(product=self._summary(products[f.product_id]), created_at=f.created_at, favorite_id=f.id)
            for f in self._table("favorites").values()
            if f.user_id == user_id and products[f.product_id].withdrawn_at is None
        ]

    async def favorites(self, user_id: uuid.UUID, after: Keyset | None, limit: int) -> list[views.FavoriteView]:
        rows = self._favorite_views(user_id)
        if after is not None:
            rows = [f for f in rows if (f.created_at, f.favorite_id) < after]
        rows.sort(key=lambda f: (f.created_at, f.favorite_id), reverse=True)
        return rows[:limit]

    async def favorite(self, user_id: uuid.UUID, product_id: uuid.UUID) -> views.FavoriteView | None:
        return next((f for f in self._favorite_views(user_id) if f.product.id == product_id), None)

    async def public_profile(self, user_id: uuid.UUID) -> views.PublicProfile | None:
        user = self._table("users").get(user_id)
        if user is None or user.deleted_at is not None:
            return None
        mine = [p for p in self._live() if p.seller_id == user_id]
        return views.PublicProfile(
            id=user.id,
            username=user.username,
            created_at=user.created_at,
            product_count=len(mine),
            rating_avg=views.rating_out(
                rating_average(sum(p.rating_sum for p in mine), sum(p.review_count for p in mine))
            ),
        )
