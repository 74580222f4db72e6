"""Categories: a tree every shopper browses and only admins change."""

from __future__ import annotations

import uuid

from msgspec import UNSET, UnsetType

from application.identity import Principal
from application.ports.persistence import UnitOfWork
from application.use_cases.base import UseCase
from application.use_cases.catalog.deps import CatalogDeps
from application.views.catalog import CategoryView
from domain.catalog import (
    Category,
    creates_cycle,
    slug_belongs_to,
    slugify,
    subtree_totals,
    unique_slug,
    validate_category_name,
)
from domain.errors import Conflict, Forbidden, NotFound, RuleViolation
from domain.ids import new_id

_SLUG_ATTEMPTS = 8


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


async def require_category(uow: UnitOfWork, category_id: uuid.UUID) -> None:
    """A category a product is filed under must exist (422 otherwise)."""
    if await uow.categories.get(category_id) is None:
        raise RuleViolation("No such category.", field="category_id")


class ListCategories(UseCase[CatalogDeps]):
    """All categories; ``product_count`` counts live products in the category and all its
    sub-categories (what a shopper browsing the tree expects)."""

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


class CreateCategory(UseCase[CatalogDeps]):
    """Admins only. The slug comes from the name and is made unique with -2, -3, ..."""

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


class UpdateCategory(UseCase[CatalogDeps]):
    """Admins only: rename (the slug follows the name) and/or move under another parent (or to
    the top with ``parent_id: null``); a move that would make a cycle is refused (422)."""

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


class DeleteCategory(UseCase[CatalogDeps]):
    """Admins only; a category that still has products (even withdrawn ones, which past orders
    point at) or sub-categories cannot go (409)."""

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
