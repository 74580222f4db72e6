"""Products: the listing's write side, their views, and the one listing statement per shape.

Counters change by arithmetic in single UPDATEs (``rating_sum = rating_sum + :delta``), so
concurrent reviews and favorites add up instead of overwriting each other.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Select,
    bindparam,
    column,
    func,
    insert,
    literal_column,
    select,
    table,
    update,
)

from adapters.sql.statements.common import any_of, before, cent_average, columns, keyset_order, typed
from adapters.sql.tables import CART_ITEMS, CATEGORIES, PRODUCTS, USERS
from application.pagination import PAGE_MAX
from application.views.catalog import ProductSort

WRITABLE = frozenset({"name", "description", "price", "image_url", "stock", "category_id"})
_LIVE = PRODUCTS.c.withdrawn_at.is_(None)

# -- the write side (entities) ----------------------------------------------------------------

PRODUCT_COLUMNS = columns(
    PRODUCTS,
    "id",
    "seller_id",
    "category_id",
    "name",
    "description",
    "price",
    "image_url",
    "stock",
    "created_at",
    "updated_at",
    "review_count",
    "favorite_count",
    "withdrawn_at",
    "rating_sum",
)
INSERT_PRODUCT = insert(PRODUCTS)
PRODUCT_BY_ID = select(*PRODUCT_COLUMNS).where(PRODUCTS.c.id == bindparam("product_id"), _LIVE)


@functools.cache
def update_fields(names: frozenset[str]) -> Any:
    """Set only these writable columns of a live product (one statement per set of names), so a
    concurrent stock decrement is never overwritten by an edit of the name."""
    unknown = names - WRITABLE
    if unknown:
        raise ValueError(f"not writable: {sorted(unknown)}")
    return (
        update(PRODUCTS)
        .where(PRODUCTS.c.id == bindparam("product_id"), _LIVE)
        .values({**{name: bindparam(name) for name in sorted(names)}, "updated_at": bindparam("now")})
    )


WITHDRAW = (
    update(PRODUCTS)
    .where(PRODUCTS.c.id == bindparam("product_id"), _LIVE)
    .values(withdrawn_at=bindparam("now"), updated_at=bindparam("now"))
)
WITHDRAW_ALL_OF_SELLER = (
    update(PRODUCTS)
    .where(PRODUCTS.c.seller_id == bindparam("seller"), _LIVE)
    .values(withdrawn_at=bindparam("now"), updated_at=bindparam("now"))
    .returning(PRODUCTS.c.id)
)
_NEW_SUM = PRODUCTS.c.rating_sum + bindparam("rating_delta")
_NEW_COUNT = PRODUCTS.c.review_count + bindparam("count_delta")
# SET expressions see the old row, so the average is computed from the new sum and count. Counters
# are not edits of the listing: updated_at stays (the table's onupdate would bump it).
APPLY_RATING_CHANGE = (
    update(PRODUCTS)
    .where(PRODUCTS.c.id == bindparam("product_id"))
    .values(
        rating_sum=_NEW_SUM,
        review_count=_NEW_COUNT,
        rating_avg=cent_average(_NEW_SUM, _NEW_COUNT),
        updated_at=PRODUCTS.c.updated_at,
    )
)
APPLY_FAVORITE_CHANGE = (
    update(PRODUCTS)
    .where(any_of(PRODUCTS.c.id, "product_ids", by_key=True))
    .values(favorite_count=PRODUCTS.c.favorite_count + bindparam("delta"), updated_at=PRODUCTS.c.updated_at)
)
REMOVE_CART_LINES_OF_PRODUCTS = CART_ITEMS.delete().where(any_of(CART_ITEMS.c.product_id, "product_ids"))

# -- views ------------------------------------------------------------------------------------

# A product as lists show it, labelled for ``row_mapper(ProductSummary)``: seller_*, category_*.
_PAGE_COLUMNS = columns(
    PRODUCTS,
    "id",
    "seller_id",
    "name",
    "price",
    "image_url",
    "category_id",
    "stock",
    "rating_sum",
    "review_count",
    "favorite_count",
    "created_at",
    "updated_at",
)
_JOINED = (
    USERS.c.username.label("seller_username"),
    CATEGORIES.c.name.label("category_name"),
    CATEGORIES.c.slug.label("category_slug"),
)
SUMMARY_COLUMNS = (*_PAGE_COLUMNS, *_JOINED)
# LEFT JOIN categories: an uncategorised product (category_id NULL) is still shown, category null.
SUMMARY_FROM = PRODUCTS.join(USERS, USERS.c.id == PRODUCTS.c.seller_id).outerjoin(
    CATEGORIES, CATEGORIES.c.id == PRODUCTS.c.category_id
)
PRODUCT_DETAIL = (
    select(*SUMMARY_COLUMNS, PRODUCTS.c.description)
    .select_from(SUMMARY_FROM)
    .where(PRODUCTS.c.id == bindparam("product_id"), _LIVE)
)
PRODUCT_SUMMARIES = (
    select(*SUMMARY_COLUMNS).select_from(SUMMARY_FROM).where(any_of(PRODUCTS.c.id, "product_ids", by_key=True), _LIVE)
)

# -- the listing --------------------------------------------------------------------------------

_ORDER: dict[ProductSort, tuple[ColumnElement[Any], bool]] = {
    ProductSort.NEWEST: (PRODUCTS.c.created_at, True),
    ProductSort.PRICE_ASC: (PRODUCTS.c.price, False),
    ProductSort.PRICE_DESC: (PRODUCTS.c.price, True),
    ProductSort.RATING: (PRODUCTS.c.rating_avg, True),
}
FTS = table("products_fts", column("rowid"))


@dataclass(frozen=True, slots=True)
class ListingShape:
    """Which conditions a page has (the values are parameters): one statement per shape."""

    dialect: str
    sort: ProductSort
    search: bool = False
    category: int = 0  # 0: any; 1: exactly one (its index orders the page); 2: several
    seller: bool = False
    min_price: bool = False
    max_price: bool = False
    in_stock: bool | None = None
    after: bool = False


def _search(shape: ListingShape, stmt: Select[Any]) -> tuple[Select[Any], ColumnElement[Any]]:
    """The full-text condition and its rank (higher is better) for the dialect."""
    if shape.dialect == "postgresql":
        # The query is parsed once, as a FROM item: websearch syntax, never an error on user input.
        query = func.websearch_to_tsquery(literal_column("'english'::regconfig"), bindparam("q")).column_valued("query")
        vector: ColumnElement[Any] = literal_column("products.search_vector")
        # ts_rank is real; cursor values are compared as float8, which holds it exactly.
        return stmt.where(vector.op("@@")(query)), func.ts_rank(vector, query, type_=Float)
    # SQLite: an FTS5 table; bm25 is "lower is better", so negated. Name matches weigh ten times
    # description matches. ``match`` is the user's words, each quoted (``fts5_query``).
    fts: ColumnElement[Any] = literal_column("products_fts")
    stmt = stmt.join(FTS, FTS.c.rowid == literal_column("products.rowid")).where(fts.op("MATCH")(bindparam("match")))
    return stmt, (-func.bm25(fts, 10.0, 1.0)).cast(Float)


# The most rows a page reads: the largest page a client may ask for, and one more that says a next
# page exists. A constant in the text (the page size is cut from it by ``:limit``), so the planner
# sees a small page in every call's plan and its generic plan alike (see ``listing``).
LISTING_CAP = PAGE_MAX + 1
_CAP: ColumnElement[int] = literal_column(str(LISTING_CAP))


@functools.cache
def listing(shape: ListingShape) -> Select[Any]:
    """The one statement behind a page of GET /api/products, for one shape of filters.

    Each filter adds its own condition (no ``:x IS NULL OR …``), so every shape gets a plan that
    range-scans its partial ``(category, key, id)`` or ``(key, id)`` index; the cursor is a
    ``(key, id)`` row comparison. The page is cut from ``products`` alone and only its rows are
    joined with sellers and categories: a search ranks thousands of matches, and joining them all
    first (hashing every user) doubled its cost. The page is cut in two steps, ``LISTING_CAP`` rows
    (a constant) and then ``:limit`` of those: a generic plan guesses a parameter LIMIT at a tenth
    of the table, which made Postgres plan every page again (planning cost twice what running it
    did); with the constant cap its one generic plan is the index scan a page's own plan is. Rows
    are pulled on demand, so the scan still stops after ``:limit`` rows.
    """
    page = select(*_PAGE_COLUMNS).where(_LIVE)
    if shape.category == 1:
        page = page.where(PRODUCTS.c.category_id == bindparam("category_id"))
    elif shape.category == 2:
        page = page.where(any_of(PRODUCTS.c.category_id, "category_ids"))
    if shape.seller:
        page = page.where(PRODUCTS.c.seller_id == bindparam("seller_id"))
    if shape.min_price:
        page = page.where(PRODUCTS.c.price >= typed("min_price", PRODUCTS.c.price))
    if shape.max_price:
        page = page.where(PRODUCTS.c.price <= typed("max_price", PRODUCTS.c.price))
    if shape.in_stock is not None:
        page = page.where(PRODUCTS.c.stock > 0 if shape.in_stock else PRODUCTS.c.stock == 0)
    rank = None
    if shape.search:
        page, rank = _search(shape, page)
    if shape.sort is ProductSort.RELEVANCE:
        if rank is None:
            raise ValueError("relevance needs a search")
        key, descending = rank, True
    else:
        key, descending = _ORDER[shape.sort]
    if shape.after:
        page = page.where(before(key, PRODUCTS.c.id, descending=descending))
    direction = keyset_order(key, PRODUCTS.c.id, descending=descending)
    capped = page.add_columns(key.label("sort_key")).order_by(*direction).limit(_CAP).subquery("capped")
    in_capped = keyset_order(capped.c.sort_key, capped.c.id, descending=descending)
    cut = select(capped).order_by(*in_capped).limit(bindparam("limit")).subquery("page")
    return (
        select(cut, *_JOINED)
        .select_from(
            cut.join(USERS, USERS.c.id == cut.c.seller_id).outerjoin(CATEGORIES, CATEGORIES.c.id == cut.c.category_id)
        )
        .order_by(*keyset_order(cut.c.sort_key, cut.c.id, descending=descending))
    )


# A seller's public face: live listings counted, ratings summed over them (deleted users: no row).
PUBLIC_PROFILE = (
    select(
        USERS.c.id,
        USERS.c.username,
        USERS.c.created_at,
        func.count(PRODUCTS.c.id).label("product_count"),
        func.coalesce(func.sum(PRODUCTS.c.rating_sum), 0).label("rating_sum"),
        func.coalesce(func.sum(PRODUCTS.c.review_count), 0).label("review_count"),
    )
    .select_from(USERS.outerjoin(PRODUCTS, (PRODUCTS.c.seller_id == USERS.c.id) & _LIVE))
    .where(USERS.c.id == bindparam("user_id"), USERS.c.deleted_at.is_(None))
    .group_by(USERS.c.id, USERS.c.username, USERS.c.created_at)
)
