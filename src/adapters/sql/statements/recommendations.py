"""The recommender's reads (interactions, signals) and its stores (neighbours, popular items, rankings).

A signal is a favorite, a line of a placed order, or a good review (``GOOD_REVIEW_RATING``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    FromClause,
    bindparam,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    union,
    union_all,
)

from adapters.sql.statements.common import any_of, upsert
from adapters.sql.tables import (
    CATEGORIES,
    FAVORITES,
    FEED_RANKINGS,
    ITEM_FACTORS,
    ITEM_NEIGHBOURS,
    ORDER_LINES,
    ORDERS,
    POPULAR_ITEMS,
    PRODUCTS,
    REVIEWS,
)
from application.ports.recommendations import GOOD_REVIEW_RATING
from domain.orders import OrderStatus

_PLACED = ORDERS.c.status == OrderStatus.PLACED.value
_GOOD = REVIEWS.c.rating >= GOOD_REVIEW_RATING
_LIVE = PRODUCTS.c.withdrawn_at.is_(None)

# -- every interaction, for a refresh: each kind by its own keyset (no long transaction) ---------


def _all_of(kind: str) -> Any:
    """One kind of interaction with its product's category and liveness, by row id, a batch at a time."""
    source: FromClause
    where: tuple[ColumnElement[bool], ...]
    if kind == "favorite":
        source, where = FAVORITES, ()
        key, user, product, at = FAVORITES.c.id, FAVORITES.c.user_id, FAVORITES.c.product_id, FAVORITES.c.created_at
    elif kind == "purchase":
        source = ORDER_LINES.join(ORDERS, ORDERS.c.id == ORDER_LINES.c.order_id)
        where = (_PLACED, ORDER_LINES.c.buyer_id.is_not(None))
        key, user = ORDER_LINES.c.id, ORDER_LINES.c.buyer_id
        product, at = ORDER_LINES.c.product_id, ORDER_LINES.c.created_at
    else:
        source, where = REVIEWS, (_GOOD,)
        key, user, product, at = REVIEWS.c.id, REVIEWS.c.author_id, REVIEWS.c.product_id, REVIEWS.c.created_at
    return (
        select(
            key.label("key"),
            user.label("user_id"),
            product.label("product_id"),
            literal(kind).label("kind"),
            at.label("at"),
            PRODUCTS.c.category_id,
            _LIVE.label("live"),
        )
        .select_from(source.join(PRODUCTS, PRODUCTS.c.id == product))
        .where(*where, key > bindparam("after_key"))
        .order_by(key)
        .limit(bindparam("limit"))
    )


ALL_INTERACTIONS = {kind: _all_of(kind) for kind in ("favorite", "purchase", "review")}

# -- one user's signals ------------------------------------------------------------------------


def _recent() -> Any:
    """A user's newest signals with their products: each kind takes its own newest ``limit``
    through its index, then the union is cut again."""
    favorites = (
        select(FAVORITES.c.product_id, literal("favorite").label("kind"), FAVORITES.c.created_at.label("at"))
        .where(FAVORITES.c.user_id == bindparam("user_id"))
        .order_by(FAVORITES.c.created_at.desc())
        .limit(bindparam("limit"))
        .subquery()
    )
    purchases = (
        select(ORDER_LINES.c.product_id, literal("purchase").label("kind"), ORDER_LINES.c.created_at.label("at"))
        .select_from(ORDER_LINES.join(ORDERS, ORDERS.c.id == ORDER_LINES.c.order_id))
        .where(ORDER_LINES.c.buyer_id == bindparam("user_id"), _PLACED)
        .order_by(ORDER_LINES.c.created_at.desc())
        .limit(bindparam("limit"))
        .subquery()
    )
    reviews = (
        select(REVIEWS.c.product_id, literal("review").label("kind"), REVIEWS.c.created_at.label("at"))
        .where(REVIEWS.c.author_id == bindparam("user_id"), _GOOD)
        .order_by(REVIEWS.c.created_at.desc())
        .limit(bindparam("limit"))
        .subquery()
    )
    merged = union_all(*(select(s.c.product_id, s.c.kind, s.c.at) for s in (favorites, purchases, reviews))).subquery()
    return (
        select(merged.c.product_id, merged.c.kind, merged.c.at, PRODUCTS.c.category_id, PRODUCTS.c.name)
        .select_from(merged.join(PRODUCTS, PRODUCTS.c.id == merged.c.product_id))
        .order_by(merged.c.at.desc(), merged.c.product_id, merged.c.kind)
        .limit(bindparam("limit"))
    )


RECENT_INTERACTIONS = _recent()
# Of some products, those the user must not be shown: their own, withdrawn, favorited, bought, reviewed.
HIDDEN_AMONG = union(
    select(PRODUCTS.c.id.label("product_id")).where(
        any_of(PRODUCTS.c.id, "product_ids", by_key=True),
        or_(PRODUCTS.c.seller_id == bindparam("user_id"), PRODUCTS.c.withdrawn_at.is_not(None)),
    ),
    select(FAVORITES.c.product_id).where(
        FAVORITES.c.user_id == bindparam("user_id"), any_of(FAVORITES.c.product_id, "product_ids", by_key=True)
    ),
    select(ORDER_LINES.c.product_id)
    .select_from(ORDER_LINES.join(ORDERS, ORDERS.c.id == ORDER_LINES.c.order_id))
    .where(
        ORDER_LINES.c.buyer_id == bindparam("user_id"),
        _PLACED,
        any_of(ORDER_LINES.c.product_id, "product_ids", by_key=True),
    ),
    select(REVIEWS.c.product_id).where(
        REVIEWS.c.author_id == bindparam("user_id"), any_of(REVIEWS.c.product_id, "product_ids", by_key=True)
    ),
)


def _signals(name: str) -> Any:
    """``user_id, product_id, at`` of every signal."""
    return union_all(
        select(
            FAVORITES.c.user_id.label("user_id"),
            FAVORITES.c.product_id.label("product_id"),
            FAVORITES.c.created_at.label("at"),
        ),
        select(ORDER_LINES.c.buyer_id, ORDER_LINES.c.product_id, ORDER_LINES.c.created_at)
        .select_from(ORDER_LINES.join(ORDERS, ORDERS.c.id == ORDER_LINES.c.order_id))
        .where(_PLACED, ORDER_LINES.c.buyer_id.is_not(None)),
        select(REVIEWS.c.author_id, REVIEWS.c.product_id, REVIEWS.c.created_at).where(_GOOD),
    ).subquery(name)


def _co_interactions() -> tuple[Any, Any]:
    """The newest ``max_users`` users of a product, and what else they took (by how many of them)."""
    signals = _signals("signals")
    mine = (
        select(signals.c.user_id, func.max(signals.c.at).label("at"))
        .where(signals.c.product_id == bindparam("product_id"))
        .group_by(signals.c.user_id)
        .order_by(func.max(signals.c.at).desc(), signals.c.user_id)
        .limit(bindparam("max_users"))
        .subquery("mine")
    )
    others = _signals("others")
    users = func.count(others.c.user_id.distinct())
    counts = (
        select(others.c.product_id, users.label("users"))
        .select_from(
            others.join(mine, mine.c.user_id == others.c.user_id).join(PRODUCTS, PRODUCTS.c.id == others.c.product_id)
        )
        .where(others.c.product_id != bindparam("product_id"), _LIVE)
        .group_by(others.c.product_id)
        .order_by(users.desc(), others.c.product_id)
        .limit(bindparam("limit"))
    )
    return select(func.count()).select_from(mine), counts


CO_USERS, CO_INTERACTIONS = _co_interactions()
_ACTIVE = _signals("signals")
ACTIVE_USERS = (
    select(_ACTIVE.c.user_id)
    .group_by(_ACTIVE.c.user_id)
    .order_by(func.max(_ACTIVE.c.at).desc(), _ACTIVE.c.user_id)
    .limit(bindparam("limit"))
)
ANY_INTERACTIONS = select(
    or_(
        exists(select(FAVORITES.c.id)),
        exists(
            select(ORDER_LINES.c.id)
            .select_from(ORDER_LINES.join(ORDERS, ORDERS.c.id == ORDER_LINES.c.order_id))
            .where(_PLACED)
        ),
        exists(select(REVIEWS.c.id).where(_GOOD)),
    )
)

# -- the model store -----------------------------------------------------------------------------

# Postgres: concurrent refreshes take turns without blocking readers (SQLite: the writers' turn).
LOCK_MODEL = text("LOCK TABLE item_neighbours, item_factors, popular_items IN SHARE ROW EXCLUSIVE MODE")
DELETE_NEIGHBOURS = delete(ITEM_NEIGHBOURS)
INSERT_NEIGHBOURS = insert(ITEM_NEIGHBOURS)
DELETE_FACTORS = delete(ITEM_FACTORS)
INSERT_FACTORS = insert(ITEM_FACTORS)
FACTORS = select(ITEM_FACTORS.c.model).limit(1)
DELETE_POPULAR = delete(POPULAR_ITEMS)
INSERT_POPULAR = insert(POPULAR_ITEMS)
NEIGHBOURS_OF = select(ITEM_NEIGHBOURS.c.product_id, ITEM_NEIGHBOURS.c.neighbours).where(
    any_of(ITEM_NEIGHBOURS.c.product_id, "product_ids", by_key=True)
)
# Every row of a model carries its build time: one row answers (no scan for max()).
MODEL_BUILT_AT = select(ITEM_NEIGHBOURS.c.created_at).limit(1)
_SET = upsert(ITEM_NEIGHBOURS)
SET_NEIGHBOURS = _SET.on_conflict_do_update(
    index_elements=[ITEM_NEIGHBOURS.c.product_id],
    set_={"neighbours": _SET.excluded.neighbours, "updated_at": _SET.excluded.updated_at},
)
POPULAR = (
    select(
        POPULAR_ITEMS.c.product_id,
        POPULAR_ITEMS.c.score,
        POPULAR_ITEMS.c.category_id,
        CATEGORIES.c.name.label("category_name"),
    )
    .select_from(POPULAR_ITEMS.outerjoin(CATEGORIES, CATEGORIES.c.id == POPULAR_ITEMS.c.category_id))
    .order_by(POPULAR_ITEMS.c.score.desc(), POPULAR_ITEMS.c.product_id)
    .limit(bindparam("limit"))
)
_RANK = func.row_number().over(
    partition_by=POPULAR_ITEMS.c.category_id, order_by=(POPULAR_ITEMS.c.score.desc(), POPULAR_ITEMS.c.product_id)
)
_RANKED = (
    select(POPULAR_ITEMS.c.product_id, POPULAR_ITEMS.c.score, POPULAR_ITEMS.c.category_id, _RANK.label("rank"))
    .where(any_of(POPULAR_ITEMS.c.category_id, "category_ids"))
    .subquery()
)
# The best ``limit`` of each of some categories, best first overall.
POPULAR_IN = (
    select(_RANKED.c.product_id, _RANKED.c.score, _RANKED.c.category_id, CATEGORIES.c.name.label("category_name"))
    .select_from(_RANKED.join(CATEGORIES, CATEGORIES.c.id == _RANKED.c.category_id))
    .where(_RANKED.c.rank <= bindparam("limit"))
    .order_by(_RANKED.c.score.desc(), _RANKED.c.product_id)
)

_PUT = upsert(FEED_RANKINGS)
# A ranking computed earlier never replaces one computed later: of two feed jobs racing, the one
# that read the interactions first may finish last.
PUT_RANKING = _PUT.on_conflict_do_update(
    index_elements=[FEED_RANKINGS.c.user_id],
    set_={"ranking": _PUT.excluded.ranking, "updated_at": _PUT.excluded.updated_at},
    where=FEED_RANKINGS.c.updated_at <= _PUT.excluded.updated_at,
)


def _fresh_ranking() -> Any:
    """The user's stored ranking while no signal of theirs, nor the model, is newer than it.

    A signal at the very instant of the computation may have been missed; a model built then was
    not (a refresh takes its build time before it primes). Each check is an index probe."""
    computed = FEED_RANKINGS.c.updated_at
    user: BindParameter[Any] = bindparam("user_id")
    newer = (
        select(FAVORITES.c.id).where(FAVORITES.c.user_id == user, FAVORITES.c.created_at >= computed),
        select(ORDERS.c.id).where(ORDERS.c.buyer_id == user, ORDERS.c.updated_at >= computed),
        select(REVIEWS.c.id).where(REVIEWS.c.author_id == user, REVIEWS.c.updated_at >= computed),
    )
    model = select(ITEM_NEIGHBOURS.c.created_at).limit(1).subquery("model")
    return select(FEED_RANKINGS.c.ranking).where(
        FEED_RANKINGS.c.user_id == user,
        *(~exists(query) for query in newer),
        ~exists(select(model.c.created_at).where(model.c.created_at > computed)),
    )


FRESH_RANKING = _fresh_ranking()
