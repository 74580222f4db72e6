"""Reviews, and the order lines that make one a verified purchase."""

from __future__ import annotations

from sqlalchemy import bindparam, delete, insert, select, update

from adapters.sql.statements.common import columns, keyset_pages
from adapters.sql.tables import ORDER_LINES, REVIEWS, USERS

REVIEW_COLUMNS = columns(
    REVIEWS, "id", "product_id", "author_id", "rating", "comment", "verified_purchase", "created_at", "updated_at"
)
INSERT_REVIEW = insert(REVIEWS)
REVIEW_BY_ID = select(*REVIEW_COLUMNS).where(REVIEWS.c.id == bindparam("review_id"))
# Guarded: only while the stored rating is the one the product's counters were computed from.
UPDATE_REVIEW = (
    update(REVIEWS)
    .where(REVIEWS.c.id == bindparam("review_id"), REVIEWS.c.rating == bindparam("expected_rating"))
    .values(rating=bindparam("rating"), comment=bindparam("comment"), updated_at=bindparam("now"))
)
DELETE_REVIEW = delete(REVIEWS).where(REVIEWS.c.id == bindparam("review_id")).returning(REVIEWS.c.rating)
HAS_ORDERED = (
    select(ORDER_LINES.c.id)
    .where(ORDER_LINES.c.buyer_id == bindparam("user_id"), ORDER_LINES.c.product_id == bindparam("product_id"))
    .limit(1)
)

# Review views: the author as {id, username}.
_VIEW = select(
    REVIEWS.c.id,
    REVIEWS.c.product_id,
    REVIEWS.c.author_id,
    USERS.c.username.label("author_username"),
    REVIEWS.c.rating,
    REVIEWS.c.comment,
    REVIEWS.c.verified_purchase,
    REVIEWS.c.created_at,
    REVIEWS.c.updated_at,
).select_from(REVIEWS.join(USERS, USERS.c.id == REVIEWS.c.author_id))
REVIEW_VIEW = _VIEW.where(REVIEWS.c.id == bindparam("review_id"))
REVIEWS_OF_PRODUCT = keyset_pages(
    _VIEW.where(REVIEWS.c.product_id == bindparam("product_id")), REVIEWS.c.created_at, REVIEWS.c.id
)
