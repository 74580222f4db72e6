"""Favorites: idempotent adds, and the favorites list (live products, newest first)."""

from __future__ import annotations

from sqlalchemy import bindparam, delete, select

from adapters.sql.statements.common import keyset_pages, upsert
from adapters.sql.statements.products import SUMMARY_COLUMNS, SUMMARY_FROM
from adapters.sql.tables import FAVORITES, PRODUCTS

# The row count says whether this call added it: a racing duplicate inserts nothing.
ADD_FAVORITE = upsert(FAVORITES).on_conflict_do_nothing(index_elements=[FAVORITES.c.user_id, FAVORITES.c.product_id])
REMOVE_FAVORITE = delete(FAVORITES).where(
    FAVORITES.c.user_id == bindparam("user"), FAVORITES.c.product_id == bindparam("product")
)
# RETURNING names exactly the rows this statement removed, so counts stay exact even if a favorite
# is added concurrently.
REMOVE_ALL_OF_USER = delete(FAVORITES).where(FAVORITES.c.user_id == bindparam("user")).returning(FAVORITES.c.product_id)

# Favorite views: the product as lists show it (its summary columns),
# plus when and which favorite (the keyset position).
_VIEW = (
    select(*SUMMARY_COLUMNS, FAVORITES.c.id.label("favorite_id"), FAVORITES.c.created_at.label("favorited_at"))
    .select_from(FAVORITES.join(SUMMARY_FROM, PRODUCTS.c.id == FAVORITES.c.product_id))
    .where(PRODUCTS.c.withdrawn_at.is_(None))
)
FAVORITE_VIEW = _VIEW.where(
    FAVORITES.c.user_id == bindparam("user_id"), FAVORITES.c.product_id == bindparam("product_id")
)
FAVORITES_OF_USER = keyset_pages(
    _VIEW.where(FAVORITES.c.user_id == bindparam("user_id")), FAVORITES.c.created_at, FAVORITES.c.id
)
