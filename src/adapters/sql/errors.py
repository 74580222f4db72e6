"""Translate constraint violations into domain errors, once, by constraint name."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from domain.errors import Conflict, DomainError, RuleViolation

# constraint or index name -> the domain error it means
CONSTRAINTS: dict[str, DomainError] = {
    "uq_users_username_lower": Conflict("That username is taken.", field="username"),
    "uq_users_email_lower": Conflict("That email is already registered.", field="email"),
    "uq_categories_slug": Conflict("A category with that slug exists.", field="slug"),
    "uq_reviews_product_author": Conflict("You have already reviewed this product.", field="product_id"),
    "uq_favorites_user_product": Conflict("Already a favorite.", field="product_id"),
    "uq_cart_items_user_product": Conflict("That product is already in the cart.", field="product_id"),
    "uq_cart_items_guest_product": Conflict("That product is already in the cart.", field="product_id"),
    "uq_orders_buyer_idempotency_key": Conflict("An order with that Idempotency-Key exists.", field="Idempotency-Key"),
    "ck_products_stock_nonnegative": Conflict("Not enough stock.", field="stock"),
    "ck_cart_items_quantity_range": RuleViolation("Quantity must be 1–99.", field="quantity"),
    "fk_products_category_id_categories": RuleViolation("No such category.", field="category_id"),
    "fk_categories_parent_id_categories": Conflict("The category has sub-categories or products.", field="parent_id"),
}
# SQLite names the columns, not the constraint, for UNIQUE on plain columns.
_SQLITE_UNIQUE = {
    "users.username": "uq_users_username_lower",
    "users.email": "uq_users_email_lower",
    "categories.slug": "uq_categories_slug",
    "reviews.product_id, reviews.author_id": "uq_reviews_product_author",
    "favorites.user_id, favorites.product_id": "uq_favorites_user_product",
    "cart_items.user_id, cart_items.product_id": "uq_cart_items_user_product",
    "cart_items.guest_cart_id, cart_items.product_id": "uq_cart_items_guest_product",
    "orders.buyer_id, orders.idempotency_key": "uq_orders_buyer_idempotency_key",
}


def constraint_of(error: IntegrityError) -> str | None:
    """The violated constraint of a SQLAlchemy ``IntegrityError`` (SQLite names columns, not constraints)."""
    orig = error.orig
    name = getattr(orig, "constraint_name", None) or getattr(getattr(orig, "__cause__", None), "constraint_name", None)
    if name:
        return str(name)
    message = str(orig)
    for known in CONSTRAINTS:
        if known in message:
            return known
    for columns, known in _SQLITE_UNIQUE.items():
        if columns in message:
            return known
    return None


def translate(constraint: str | None, message: str) -> DomainError:
    """The domain error a violated constraint means, whichever driver reported it."""
    known = CONSTRAINTS.get(constraint or "")
    if known is not None:
        return type(known)(known.detail, field=known.field)
    if "FOREIGN KEY" in message or "foreign key" in message:
        return RuleViolation("A referenced record does not exist or is still in use.")
    return Conflict("The change conflicts with existing data.")
