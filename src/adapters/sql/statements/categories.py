"""The category tree."""

from __future__ import annotations

from sqlalchemy import bindparam, delete, exists, func, insert, or_, select, update

from adapters.sql.statements.common import advisory_xact_lock, bound, columns
from adapters.sql.tables import CATEGORIES, PRODUCTS

CATEGORY_COLUMNS = columns(CATEGORIES, "id", "name", "slug", "parent_id", "created_at", "updated_at")
INSERT_CATEGORY = insert(CATEGORIES)
CATEGORY_BY_ID = select(*CATEGORY_COLUMNS).where(CATEGORIES.c.id == bindparam("category_id"))
UPDATE_CATEGORY = (
    update(CATEGORIES)
    .where(CATEGORIES.c.id == bindparam("category_id"))
    .values(bound("name", "slug", "parent_id", "updated_at"))
)
DELETE_CATEGORY = delete(CATEGORIES).where(CATEGORIES.c.id == bindparam("category_id"))
# Slugs are [a-z0-9-] only, so the pattern (base || '-%') has no LIKE wildcard to escape.
SLUGS_LIKE = select(CATEGORIES.c.slug).where(
    or_(CATEGORIES.c.slug == bindparam("base"), CATEGORIES.c.slug.like(bindparam("pattern")))
)
PARENT_LINKS = select(CATEGORIES.c.id, CATEGORIES.c.parent_id)
IN_USE = select(
    or_(
        exists().where(CATEGORIES.c.parent_id == bindparam("category_id")),
        exists().where(PRODUCTS.c.category_id == bindparam("category_id")),
    )
)
# Any constant works: it only has to be the same for every process touching the category tree.
LOCK_TREE = select(advisory_xact_lock(0x6D6B_7463))  # "mktc"

_LIVE_COUNTS = (
    select(PRODUCTS.c.category_id, func.count().label("live"))
    .where(PRODUCTS.c.withdrawn_at.is_(None))
    .group_by(PRODUCTS.c.category_id)
    .subquery()
)
# Every category with its live products (directly in it), by name.
CATEGORY_VIEWS = (
    select(
        CATEGORIES.c.id,
        CATEGORIES.c.name,
        CATEGORIES.c.slug,
        CATEGORIES.c.parent_id,
        func.coalesce(_LIVE_COUNTS.c.live, 0).label("product_count"),
    )
    .select_from(CATEGORIES.outerjoin(_LIVE_COUNTS, _LIVE_COUNTS.c.category_id == CATEGORIES.c.id))
    .order_by(CATEGORIES.c.name, CATEGORIES.c.id)
)
