"""Catalog use cases: categories (admin), products (owner-only writes), search, reviews, favorites.

Writes run in one unit of work each and change counters on products (ratings, favorites) by
arithmetic in the same transaction, so they never drift from the rows they count. Reads go
through ``CatalogQueries`` and come back as views.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any, TypeVar

from msgspec import UNSET, UnsetType

from application.cached_catalog import CacheInvalidation
from application.identity import Principal
from application.jobs import JobDispatcher, feed_update
from application.pagination import PAGE_DEFAULT, PAGE_MAX, PAGE_MIN, check_limit, decode_cursor, encode_cursor
from application.ports.catalog import After, CatalogQueries
from application.ports.clock import Clock
from application.ports.persistence import UnitOfWork, UnitOfWorkFactory
from application.views.catalog import (
    CategoryView,
    FavoriteView,
    Page,
    ProductDetail,
    ProductFilter,
    ProductSort,
    ProductSummary,
    ReviewView,
)
from application.webhook_events import OutboxJob, out_of_stock_events, record, review_events
from domain.catalog import (
    DESCRIPTION_MAX,
    NAME_MAX,
    Category,
    Favorite,
    Product,
    Review,
    creates_cycle,
    descendants,
    slug_belongs_to,
    slugify,
    subtree_totals,
    unique_slug,
    validate_category_name,
    validate_comment,
    validate_image_url,
    validate_rating,
    validate_stock,
    validate_text,
)
from domain.errors import Conflict, Forbidden, InvalidInput, NotFound, RuleViolation
from domain.ids import new_id
from domain.money import MAX_PRICE, validate_price
from domain.orders import CartOwner

T = TypeVar("T")
LIMIT_MIN, LIMIT_MAX, LIMIT_DEFAULT = PAGE_MIN, PAGE_MAX, PAGE_DEFAULT
Q_MAX = 200
_SLUG_ATTEMPTS = 8


@dataclass(frozen=True, slots=True)
class CatalogDeps:
    uow: UnitOfWorkFactory
    queries: CatalogQueries
    clock: Clock
    # Told after each commit what changed, so cached reads never outlive it (None: no cache).
    invalidation: CacheInvalidation | None = None
    # Hands outbox jobs (webhook events) to the queue after a commit (None: the relay does).
    jobs: JobDispatcher | None = None

    def interaction(self, user_id: uuid.UUID, product_id: uuid.UUID) -> list[tuple[str, dict[str, Any]]]:
        """A favorite or review: the feed update job to record with it (none without a dispatcher)."""
        return [feed_update(user_id, [product_id])] if self.jobs is not None else []

    async def dispatch(self, jobs: list[OutboxJob]) -> None:
        if jobs and self.jobs is not None:
            await self.jobs.dispatch(jobs)

    async def products_changed(self, *product_ids: uuid.UUID) -> None:
        if self.invalidation is not None:
            await self.invalidation.products_changed(product_ids)

    async def listings_changed(self) -> None:
        if self.invalidation is not None:
            await self.invalidation.listings_changed()

    async def feed_changed(self, user_id: uuid.UUID) -> None:
        if self.invalidation is not None:
            await self.invalidation.feed_changed(user_id)


def _page(rows: list[T], limit: int, kind: str, position: Callable[[T], tuple[Any, uuid.UUID]], scope: str) -> Page[T]:
    """Rows were fetched with ``limit + 1``: the extra row only says that another page exists."""
    if len(rows) <= limit:
        return Page(items=rows, next_cursor=None)
    items = rows[:limit]
    key, last_id = position(items[-1])
    return Page(items=items, next_cursor=encode_cursor(kind, key, last_id, scope=scope))


def _after(cursor: str | None, kind: str, scope: str) -> After:
    """Where a page resumes; ``scope`` names the list (whose, which filters) the cursor must be from."""
    return decode_cursor(cursor, kind, scope=scope) if cursor is not None else None


def _require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise Forbidden("Only admins manage categories.")


def category_ref_id(raw: str | uuid.UUID, *, field: str = "category_id") -> uuid.UUID:
    """A category named in a request body: anything that is not an id is an unknown category (422)."""
    if isinstance(raw, uuid.UUID):
        return raw
    try:
        return uuid.UUID(raw)
    except (ValueError, AttributeError, TypeError):
        raise RuleViolation("No such category.", field=field) from None


# -- categories ---------------------------------------------------------------------------------


class ListCategories:
    """All categories; ``product_count`` counts live products in the category and all its
    sub-categories (what a shopper browsing the tree expects)."""

    def __init__(self, deps: CatalogDeps) -> None:
        self.deps = deps

    async def execute(self) -> list[CategoryView]:
        views = await self.deps.queries.categories()
        parents = {view.id: view.parent_id for view in views}
        totals = subtree_totals(parents, {view.id: view.product_count for view in views})
        return [
            CategoryView(
                id=view.id, name=view.name, slug=view.slug, parent_id=view.parent_id, product_count=totals[view.id]
            )
            for view in views
        ]

    async def one(self, category_id: uuid.UUID) -> CategoryView:
        for view in await self.execute():
            if view.id == category_id:
                return view
        raise NotFound("No such category.")


async def _claim_slug(uow: UnitOfWork, category: Category, base: str, *, insert: bool) -> None:
    """Store the category under ``base`` or the first free ``base-N``; the unique index decides
    races, and a loser simply tries the next free suffix."""
    for _ in range(_SLUG_ATTEMPTS):
        category.slug = unique_slug(base, await uow.categories.slugs_like(base))
        try:
            if insert:
                await uow.categories.add(category)
            else:
                await uow.categories.update(category)
            return
        except Conflict as error:
            if error.field != "slug":
                raise
    raise Conflict("Could not find a free slug for that name; try another name.", field="name")


class CreateCategory:
    """Admins only. The slug comes from the name and is made unique with -2, -3, ..."""

    def __init__(self, deps: CatalogDeps) -> None:
        self.deps = deps

    async def execute(self, principal: Principal, *, name: str, parent_id: uuid.UUID | None = None) -> CategoryView:
        _require_admin(principal)
        name = validate_category_name(name)
        now = self.deps.clock.now()
        category = Category(id=new_id(), name=name, slug="", parent_id=parent_id, created_at=now, updated_at=now)
        async with self.deps.uow() as uow:
            if parent_id is not None and await uow.categories.get(parent_id) is None:
                raise RuleViolation("No such parent category.", field="parent_id")
            await _claim_slug(uow, category, slugify(name), insert=True)
            await uow.commit()
        await self.deps.listings_changed()
        return CategoryView(id=category.id, name=name, slug=category.slug, parent_id=parent_id, product_count=0)


class UpdateCategory:
    """Admins only: rename (the slug follows the name) and/or move under another parent (or to
    the top with ``parent_id: null``); a move that would make a cycle is refused (422)."""

    def __init__(self, deps: CatalogDeps) -> None:
        self.deps = deps

    async def execute(
        self,
        principal: Principal,
        category_id: uuid.UUID,
        *,
        name: str | UnsetType = UNSET,
        parent_id: uuid.UUID | UnsetType | None = UNSET,
    ) -> CategoryView:
        _require_admin(principal)
        if not isinstance(name, UnsetType):
            name = validate_category_name(name)
        async with self.deps.uow() as uow:
            await uow.categories.lock_tree()
            category = await uow.categories.get(category_id)
            if category is None:
                raise NotFound("No such category.")
            if not isinstance(parent_id, UnsetType) and parent_id != category.parent_id:
                if parent_id is not None and await uow.categories.get(parent_id) is None:
                    raise RuleViolation("No such parent category.", field="parent_id")
                if creates_cycle(await uow.categories.parent_links(), category.id, parent_id):
                    raise RuleViolation("A category cannot be moved below itself.", field="parent_id")
                category.parent_id = parent_id
            category.updated_at = self.deps.clock.now()
            if not isinstance(name, UnsetType) and name != category.name:
                category.name = name
                base = slugify(name)
                if not slug_belongs_to(category.slug, base):
                    await _claim_slug(uow, category, base, insert=False)
                else:
                    await uow.categories.update(category)
            else:
                await uow.categories.update(category)
            await uow.commit()
        await self.deps.listings_changed()
        return await ListCategories(self.deps).one(category_id)


class DeleteCategory:
    """Admins only; a category that still has products (even withdrawn ones, which past orders
    point at) or sub-categories cannot go (409)."""

    def __init__(self, deps: CatalogDeps) -> None:
        self.deps = deps

    async def execute(self, principal: Principal, category_id: uuid.UUID) -> None:
        _require_admin(principal)
        async with self.deps.uow() as uow:
            await uow.categories.lock_tree()
            if await uow.categories.get(category_id) is None:
                raise NotFound("No such category.")
            if await uow.categories.in_use(category_id):
                raise Conflict("The category still has products or sub-categories.", field="category_id")
            await uow.categories.delete(category_id)
            await uow.commit()
        await self.deps.listings_changed()


# -- products -----------------------------------------------------------------------------------


async def _require_category(uow: UnitOfWork, category_id: uuid.UUID) -> None:
    if await uow.categories.get(category_id) is None:
        raise RuleViolation("No such category.", field="category_id")


class CreateProduct:
    """List a product for sale; the caller becomes its seller."""

    def __init__(self, deps: CatalogDeps) -> None:
        self.deps = deps

    async def execute(
        self,
        principal: Principal,
        *,
        name: str,
        price: Decimal | str,
        category_id: str | uuid.UUID | None = None,
        description: str = "",
        image_url: str | None = None,
        stock: int = 1,
    ) -> ProductDetail:
        name, description, checked_price, image_url, stock = Product.checked(name, description, price, image_url, stock)
        category = category_ref_id(category_id) if category_id is not None else None
        now = self.deps.clock.now()
        product = Product(
            id=new_id(),
            seller_id=principal.id,
            category_id=category,
            name=name,
            description=description,
            price=checked_price,
            image_url=image_url,
            stock=stock,
            created_at=now,
            updated_at=now,
        )
        async with self.deps.uow() as uow:
            if category is not None:
                await _require_category(uow, category)
            await uow.products.add(product)
            await uow.commit()
        await self.deps.listings_changed()
        return await GetProduct(self.deps).execute(product.id)


class GetProduct:
    def __init__(self, deps: CatalogDeps) -> None:
        self.deps = deps

    async def execute(self, product_id: uuid.UUID) -> ProductDetail:
        detail = await self.deps.queries.product(product_id)
        if detail is None:
            raise NotFound("No such product.", field="product_id")
        return detail


class UpdateProduct:
    """Partial update by the seller or an admin (others get 403 and nothing changes). Only the
    given fields are written, so a concurrent checkout's stock decrement is never overwritten."""

    def __init__(self, deps: CatalogDeps) -> None:
        self.deps = deps

    async def execute(
        self,
        principal: Principal,
        product_id: uuid.UUID,
        *,
        name: str | UnsetType = UNSET,
        description: str | UnsetType = UNSET,
        price: Decimal | str | UnsetType = UNSET,
        image_url: str | UnsetType | None = UNSET,
        stock: int | UnsetType = UNSET,
        category_id: str | uuid.UUID | UnsetType | None = UNSET,
    ) -> ProductDetail:
        async with self.deps.uow() as uow:
            product = await uow.products.get(product_id)
            if product is None:
                raise NotFound("No such product.", field="product_id")
            if not product.may_be_changed_by(principal.id, is_admin=principal.is_admin):
                raise Forbidden("Only the seller or an admin may change this product.")
            changes: dict[str, Any] = {}
            if not isinstance(name, UnsetType):
                changes["name"] = validate_text(name, field="name", min_len=1, max_len=NAME_MAX)
            if not isinstance(description, UnsetType):
                changes["description"] = validate_text(
                    description, field="description", min_len=0, max_len=DESCRIPTION_MAX
                )
            if not isinstance(price, UnsetType):
                changes["price"] = validate_price(price)
            if not isinstance(image_url, UnsetType):
                changes["image_url"] = validate_image_url(image_url)
            if not isinstance(stock, UnsetType):
                changes["stock"] = validate_stock(stock)
            if category_id is None:
                changes["category_id"] = None  # uncategorised
            elif not isinstance(category_id, UnsetType):
                category = category_ref_id(category_id)
                await _require_category(uow, category)
                changes["category_id"] = category
            jobs: list[OutboxJob] = []
            if changes:
                now = self.deps.clock.now()
                if not await uow.products.update_fields(product_id, changes, now):
                    raise NotFound("No such product.", field="product_id")
                if changes.get("stock") == 0 and product.stock > 0:
                    jobs = await record(uow, await out_of_stock_events(uow, [product_id], now))
                await uow.commit()
        if changes:
            await self.deps.dispatch(jobs)
            await self.deps.products_changed(product_id)
        return await GetProduct(self.deps).execute(product_id)


class WithdrawProduct:
    """Seller or admin: the listing disappears from reads, lists and carts; order lines keep it."""

    def __init__(self, deps: CatalogDeps) -> None:
        self.deps = deps

    async def execute(self, principal: Principal, product_id: uuid.UUID) -> None:
        async with self.deps.uow() as uow:
            product = await uow.products.get(product_id)
            if product is None:
                raise NotFound("No such product.", field="product_id")
            if not product.may_be_changed_by(principal.id, is_admin=principal.is_admin):
                raise Forbidden("Only the seller or an admin may withdraw this product.")
            if not await uow.products.withdraw(product_id, self.deps.clock.now()):
                raise NotFound("No such product.", field="product_id")
            await uow.cart_cleanup.remove_lines_of_products([product_id])
            await uow.commit()
        await self.deps.products_changed(product_id)


_CENT = Decimal("0.01")


def _money_filter(value: Decimal | None, field: str, rounding: str) -> Decimal | None:
    if value is None:
        return None
    if not value.is_finite() or value < 0:
        raise InvalidInput(f"{field} must be a non-negative decimal.", field=field)
    # No price exceeds MAX_PRICE, so any larger bound filters the same as one just above it; the
    # clamp keeps huge values (1e400) from overflowing the money column's exact arithmetic. Prices
    # have two places, so a bound rounded to cents (up for a minimum, down for a maximum) selects
    # the same products, and tiny exponents (1e-100000) never reach the driver.
    return min(value, MAX_PRICE + 1).quantize(_CENT, rounding=rounding)


def clean_query(q: str | None) -> str | None:
    if q is None:
        return None
    if "\x00" in q:
        raise InvalidInput("q may not contain NUL characters.", field="q")
    q = q.strip()
    if len(q) > Q_MAX:
        raise InvalidInput(f"q must be at most {Q_MAX} characters.", field="q")
    return q or None


class ListProducts:
    """Browse and search live products, keyset-paginated.

    ``category_id`` includes all its sub-categories. ``sort`` defaults to ``relevance`` when
    ``q`` is given (full-text rank) and to ``newest`` otherwise; ``relevance`` needs ``q``.
    """

    def __init__(self, deps: CatalogDeps) -> None:
        self.deps = deps

    async def execute(
        self,
        *,
        q: str | None = None,
        category_id: uuid.UUID | None = None,
        seller_id: uuid.UUID | None = None,
        min_price: Decimal | None = None,
        max_price: Decimal | None = None,
        in_stock: bool | None = None,
        sort: ProductSort | None = None,
        cursor: str | None = None,
        limit: int = LIMIT_DEFAULT,
    ) -> Page[ProductSummary]:
        check_limit(limit)
        q = clean_query(q)
        min_price = _money_filter(min_price, "min_price", ROUND_CEILING)
        max_price = _money_filter(max_price, "max_price", ROUND_FLOOR)
        if min_price is not None and max_price is not None and min_price > max_price:
            raise InvalidInput("min_price must not exceed max_price.", field="min_price")
        if sort is None:
            sort = ProductSort.RELEVANCE if q else ProductSort.NEWEST
        if sort is ProductSort.RELEVANCE and not q:
            raise InvalidInput("sort=relevance needs a search query q.", field="sort")
        scope = f"products|{q}|{category_id}|{seller_id}|{min_price}|{max_price}|{in_stock}"
        after = _after(cursor, sort.value, scope)
        category_ids: frozenset[uuid.UUID] | None = None
        if category_id is not None:
            parents = await self.deps.queries.category_parents()
            if category_id not in parents:
                return Page(items=[], next_cursor=None)
            category_ids = frozenset(descendants(parents, category_id))
        filters = ProductFilter(
            q=q,
            category_ids=category_ids,
            seller_id=seller_id,
            min_price=min_price,
            max_price=max_price,
            in_stock=in_stock,
        )
        rows = await self.deps.queries.products(filters, sort, after, limit + 1)
        page = _page(rows, limit, sort.value, lambda row: (row[0], row[1].id), scope)
        return Page(items=[summary for _, summary in page.items], next_cursor=page.next_cursor)


# -- reviews ------------------------------------------------------------------------------------


class ListReviews:
    """A live product's reviews, newest first."""

    def __init__(self, deps: CatalogDeps) -> None:
        self.deps = deps

    async def execute(
        self, product_id: uuid.UUID, *, cursor: str | None = None, limit: int = LIMIT_DEFAULT
    ) -> Page[ReviewView]:
        check_limit(limit)
        after = _after(cursor, "reviews", str(product_id))
        if await self.deps.queries.product(product_id) is None:
            raise NotFound("No such product.", field="product_id")
        rows = await self.deps.queries.reviews(product_id, after, limit + 1)
        return _page(rows, limit, "reviews", lambda r: (r.created_at, r.id), str(product_id))


class CreateReview:
    """One review per user and product (409, the unique key decides races); never on one's own
    product (403). The product's rating counters move in the same transaction."""

    def __init__(self, deps: CatalogDeps) -> None:
        self.deps = deps

    async def execute(
        self, principal: Principal, product_id: uuid.UUID, *, rating: int, comment: str = ""
    ) -> ReviewView:
        rating = validate_rating(rating)
        comment = validate_comment(comment)
        now = self.deps.clock.now()
        async with self.deps.uow() as uow:
            product = await uow.products.get(product_id)
            if product is None:
                raise NotFound("No such product.", field="product_id")
            if product.seller_id == principal.id:
                raise Forbidden("You cannot review your own product.")
            review = Review(
                id=new_id(),
                product_id=product_id,
                author_id=principal.id,
                rating=rating,
                comment=comment,
                verified_purchase=await uow.reviews.has_ordered(principal.id, product_id),
                created_at=now,
                updated_at=now,
            )
            await uow.reviews.add(review)
            await uow.products.apply_rating_change(product_id, rating, 1)
            jobs = await record(
                uow,
                [
                    *await review_events(uow, review, product.seller_id),
                    *self.deps.interaction(principal.id, product_id),
                ],
            )
            await uow.commit()
        await self.deps.products_changed(product_id)
        await self.deps.feed_changed(principal.id)
        await self.deps.dispatch(jobs)
        return await _review_view(self.deps, review.id)


async def _review_view(deps: CatalogDeps, review_id: uuid.UUID) -> ReviewView:
    view = await deps.queries.review(review_id)
    if view is None:
        raise NotFound("No such review.", field="review_id")
    return view


class UpdateReview:
    """The author only. A guarded update (on the rating read) keeps the product's sum exact even
    when two edits race: the loser gets 409 and may retry."""

    def __init__(self, deps: CatalogDeps) -> None:
        self.deps = deps

    async def execute(
        self,
        principal: Principal,
        review_id: uuid.UUID,
        *,
        rating: int | UnsetType = UNSET,
        comment: str | UnsetType = UNSET,
    ) -> ReviewView:
        async with self.deps.uow() as uow:
            review = await uow.reviews.get(review_id)
            if review is None:
                raise NotFound("No such review.", field="review_id")
            if review.author_id != principal.id:
                raise Forbidden("Only the author may edit a review.")
            new_rating = review.rating if isinstance(rating, UnsetType) else validate_rating(rating)
            new_comment = review.comment if isinstance(comment, UnsetType) else validate_comment(comment)
            if (new_rating, new_comment) != (review.rating, review.comment):
                updated = await uow.reviews.update(
                    review_id,
                    expected_rating=review.rating,
                    rating=new_rating,
                    comment=new_comment,
                    now=self.deps.clock.now(),
                )
                if not updated:
                    raise Conflict("The review changed meanwhile; fetch it and try again.", field="rating")
                if new_rating != review.rating:
                    await uow.products.apply_rating_change(review.product_id, new_rating - review.rating, 0)
                await uow.commit()
                await self.deps.products_changed(review.product_id)
                await self.deps.feed_changed(principal.id)
        return await _review_view(self.deps, review_id)


class DeleteReview:
    """The author or an admin; the product's counters drop in the same transaction."""

    def __init__(self, deps: CatalogDeps) -> None:
        self.deps = deps

    async def execute(self, principal: Principal, review_id: uuid.UUID) -> None:
        async with self.deps.uow() as uow:
            review = await uow.reviews.get(review_id)
            if review is None:
                raise NotFound("No such review.", field="review_id")
            if review.author_id != principal.id and not principal.is_admin:
                raise Forbidden("Only the author or an admin may delete a review.")
            rating = await uow.reviews.delete(review_id)
            if rating is None:
                raise NotFound("No such review.", field="review_id")
            await uow.products.apply_rating_change(review.product_id, -rating, -1)
            await uow.commit()
        await self.deps.products_changed(review.product_id)
        await self.deps.feed_changed(review.author_id)


# -- favorites ----------------------------------------------------------------------------------


class AddFavorite:
    """Idempotent: returns (favorite, created). Only a live product can be favorited."""

    def __init__(self, deps: CatalogDeps) -> None:
        self.deps = deps

    async def execute(self, principal: Principal, product_id: uuid.UUID) -> tuple[FavoriteView, bool]:
        async with self.deps.uow() as uow:
            if await uow.products.get(product_id) is None:
                raise NotFound("No such product.", field="product_id")
            favorite = Favorite(
                id=new_id(), user_id=principal.id, product_id=product_id, created_at=self.deps.clock.now()
            )
            created = await uow.favorites.add(favorite)
            if created:
                await uow.products.apply_favorite_change([product_id], 1)
                jobs = await record(uow, self.deps.interaction(principal.id, product_id))
                await uow.commit()
        if created:
            await self.deps.products_changed(product_id)
            await self.deps.feed_changed(principal.id)
            await self.deps.dispatch(jobs)
        view = await self.deps.queries.favorite(principal.id, product_id)
        if view is None:  # withdrawn or removed right after
            raise NotFound("No such product.", field="product_id")
        return view, created


class RemoveFavorite:
    """Idempotent: removing what is not a favorite is fine."""

    def __init__(self, deps: CatalogDeps) -> None:
        self.deps = deps

    async def execute(self, principal: Principal, product_id: uuid.UUID) -> None:
        async with self.deps.uow() as uow:
            removed = await uow.favorites.remove(principal.id, product_id)
            if removed:
                await uow.products.apply_favorite_change([product_id], -1)
                await uow.commit()
        if removed:
            await self.deps.products_changed(product_id)
            await self.deps.feed_changed(principal.id)


class ListFavorites:
    """The caller's favorites, newest first (withdrawn products left out)."""

    def __init__(self, deps: CatalogDeps) -> None:
        self.deps = deps

    async def execute(
        self, principal: Principal, *, cursor: str | None = None, limit: int = LIMIT_DEFAULT
    ) -> Page[FavoriteView]:
        check_limit(limit)
        after = _after(cursor, "favorites", str(principal.id))
        rows = await self.deps.queries.favorites(principal.id, after, limit + 1)
        return _page(rows, limit, "favorites", lambda f: (f.created_at, f.favorite_id), str(principal.id))


async def forget_account_catalog_data(uow: UnitOfWork, user_id: uuid.UUID, now: datetime) -> list[uuid.UUID]:
    """For account deletion: withdraw the user's listings, empty carts of them and the user's
    own cart, and drop the user's favorites with their counts (all in the caller's unit of work).

    Returns the products whose reads changed (for cache invalidation after the commit)."""
    withdrawn = await uow.products.withdraw_all_of_seller(user_id, now)
    if withdrawn:
        await uow.cart_cleanup.remove_lines_of_products(withdrawn)
    await uow.cart.clear(CartOwner.of_user(user_id))
    dropped = await uow.favorites.remove_all_of_user(user_id)
    if dropped:
        await uow.products.apply_favorite_change(dropped, -1)
    return [*withdrawn, *dropped]


def build_catalog_use_cases(deps: CatalogDeps) -> dict[str, Any]:
    """Use cases by the names HTTP handlers ask for (``NamedDependency``)."""
    return {
        "list_categories": ListCategories(deps),
        "create_category": CreateCategory(deps),
        "update_category": UpdateCategory(deps),
        "delete_category": DeleteCategory(deps),
        "create_product": CreateProduct(deps),
        "get_product": GetProduct(deps),
        "update_product": UpdateProduct(deps),
        "withdraw_product": WithdrawProduct(deps),
        "list_products": ListProducts(deps),
        "list_reviews": ListReviews(deps),
        "create_review": CreateReview(deps),
        "update_review": UpdateReview(deps),
        "delete_review": DeleteReview(deps),
        "add_favorite": AddFavorite(deps),
        "remove_favorite": RemoveFavorite(deps),
        "list_favorites": ListFavorites(deps),
    }
