"""Products: listed and changed by their sellers (or an admin), browsed and searched by anyone."""

from __future__ import annotations

import uuid
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from msgspec import UNSET, UnsetType

from application.identity import Principal
from application.jobs import OutboxJob, record
from application.pagination import PAGE_DEFAULT, Page, check_limit, page_of, resume_after
from application.ports.persistence import UnitOfWork
from application.use_cases.base import UseCase
from application.use_cases.catalog.categories import category_ref_id, require_category
from application.use_cases.catalog.deps import CatalogDeps
from application.views.catalog import ProductDetail, ProductFilter, ProductSort, ProductSummary
from application.webhook_events import out_of_stock_events
from domain.catalog import (
    DESCRIPTION_MAX,
    NAME_MAX,
    Product,
    descendants,
    validate_image_url,
    validate_stock,
    validate_text,
)
from domain.errors import Forbidden, InvalidInput, NotFound
from domain.ids import new_id
from domain.money import MAX_PRICE, validate_price

Q_MAX = 200


class CreateProduct(UseCase[CatalogDeps]):
    """List a product for sale; the caller becomes its seller."""

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
                await require_category(uow, category)
            await uow.products.add(product)
            await uow.commit()
        await self.deps.listings_changed()
        return await GetProduct(self.deps).execute(product.id)


class GetProduct(UseCase[CatalogDeps]):
    async def execute(self, product_id: uuid.UUID) -> ProductDetail:
        detail = await self.deps.queries.product(product_id)
        if detail is None:
            raise NotFound("No such product.", field="product_id")
        return detail


async def _product_to_change(uow: UnitOfWork, principal: Principal, product_id: uuid.UUID, action: str) -> Product:
    """The product, if it exists (404) and the caller is its seller or an admin (403)."""
    product = await uow.products.get(product_id)
    if product is None:
        raise NotFound("No such product.", field="product_id")
    if not product.may_be_changed_by(principal.id, is_admin=principal.is_admin):
        raise Forbidden(f"Only the seller or an admin may {action} this product.")
    return product


class UpdateProduct(UseCase[CatalogDeps]):
    """Partial update by the seller or an admin (others get 403 and nothing changes). Only the
    given fields are written, so a concurrent checkout's stock decrement is never overwritten."""

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
            product = await _product_to_change(uow, principal, product_id, "change")
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
                await require_category(uow, category)
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


class WithdrawProduct(UseCase[CatalogDeps]):
    """Seller or admin: the listing disappears from reads, lists and carts; order lines keep it."""

    async def execute(self, principal: Principal, product_id: uuid.UUID) -> None:
        async with self.deps.uow() as uow:
            await _product_to_change(uow, principal, product_id, "withdraw")
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


class ListProducts(UseCase[CatalogDeps]):
    """Browse and search live products, keyset-paginated.

    ``category_id`` includes all its sub-categories. ``sort`` defaults to ``relevance`` when
    ``q`` is given (full-text rank) and to ``newest`` otherwise; ``relevance`` needs ``q``.
    """

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
        limit: int = PAGE_DEFAULT,
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
        after = resume_after(cursor, sort.value, scope=scope)
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
        page = page_of(rows, limit, sort.value, lambda row: (row[0], row[1].id), scope=scope)
        return Page(items=[summary for _, summary in page.items], next_cursor=page.next_cursor)
