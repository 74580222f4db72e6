"""Favorites: idempotent marks on live products, counted on the product in the same transaction."""

from __future__ import annotations

import uuid

from application.identity import Principal
from application.jobs import record
from application.pagination import PAGE_DEFAULT, Page, check_limit, page_of, resume_after
from application.use_cases.base import UseCase
from application.use_cases.catalog.deps import CatalogDeps
from application.views.catalog import FavoriteView
from domain.catalog import Favorite
from domain.errors import NotFound
from domain.ids import new_id


class AddFavorite(UseCase[CatalogDeps]):
    """Idempotent: returns (favorite, created). Only a live product can be favorited."""

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
            await self.deps.products_changed(product_id, feed_of=principal.id)
            await self.deps.dispatch(jobs)
        view = await self.deps.queries.favorite(principal.id, product_id)
        if view is None:  # withdrawn or removed right after
            raise NotFound("No such product.", field="product_id")
        return view, created


class RemoveFavorite(UseCase[CatalogDeps]):
    """Idempotent: removing what is not a favorite is fine. The feed is recomputed (a job), so
    "because you favorited …" goes with the favorite."""

    async def execute(self, principal: Principal, product_id: uuid.UUID) -> None:
        async with self.deps.uow() as uow:
            removed = await uow.favorites.remove(principal.id, product_id)
            if removed:
                await uow.products.apply_favorite_change([product_id], -1)
                jobs = await record(uow, self.deps.interaction(principal.id, product_id))
                await uow.commit()
        if removed:
            await self.deps.products_changed(product_id, feed_of=principal.id)
            await self.deps.dispatch(jobs)


class ListFavorites(UseCase[CatalogDeps]):
    """The caller's favorites, newest first (withdrawn products left out)."""

    async def execute(
        self, principal: Principal, *, cursor: str | None = None, limit: int = PAGE_DEFAULT
    ) -> Page[FavoriteView]:
        check_limit(limit)
        after = resume_after(cursor, "favorites", scope=str(principal.id))
        rows = await self.deps.queries.favorites(principal.id, after, limit + 1)
        return page_of(rows, limit, "favorites", lambda f: (f.created_at, f.favorite_id), scope=str(principal.id))
