"""Favorites: idempotent PUT/DELETE and the caller's list."""

from __future__ import annotations

import uuid

from litestar import Controller, Response, delete, get, put
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from application.pagination import Page
from entrypoints.http.catalog_schemas import FavoriteOut, out
from entrypoints.http.controllers.catalog import Cursor, Limit, product_uuid
from entrypoints.http.dependencies import Caller, Catalog


class FavoritesController(Controller):
    path = "/api/favorites"
    tags = ["favorites"]

    @get("/", operation_id="listFavorites", summary="Your favorites, newest first")
    async def list_favorites(
        self, request: Caller, catalog: Catalog, cursor: Cursor = None, limit: Limit = 20
    ) -> Page[FavoriteOut]:
        page = await catalog.list_favorites.execute(request.user, cursor=cursor, limit=limit)
        return out(page, Page[FavoriteOut])

    @put(
        "/{product_id:str}",
        operation_id="addFavorite",
        summary="Favorite a product",
        status_code=HTTP_201_CREATED,
        responses={HTTP_200_OK: ResponseSpec(data_container=FavoriteOut, description="Already a favorite.")},
    )
    async def add_favorite(self, request: Caller, product_id: FromPath[str], catalog: Catalog) -> Response[FavoriteOut]:
        """Idempotent: 201 the first time, 200 after. Unknown or withdrawn products → 404."""
        view, created = await catalog.add_favorite.execute(request.user, product_uuid(product_id))
        return Response(out(view, FavoriteOut), status_code=HTTP_201_CREATED if created else HTTP_200_OK)

    @delete("/{product_id:str}", operation_id="removeFavorite", summary="Unfavorite a product")
    async def remove_favorite(self, request: Caller, product_id: FromPath[str], catalog: Catalog) -> None:
        """204 always, also when it was not a favorite (or is no product at all)."""
        try:
            parsed = uuid.UUID(product_id)
        except ValueError:
            return  # nothing with that id can be a favorite
        await catalog.remove_favorite.execute(request.user, parsed)
