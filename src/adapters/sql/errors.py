"""Translate database errors once: constraint violations into domain errors (by constraint name),
outages into the ports' ``Unavailable``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from application.ports.errors import Unavailable
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


# Errors meaning "the database is not there right now" (a restart, a failover, a network cut, an
# exhausted pool), as raised directly or wrapped by SQLAlchemy (``.orig``, ``__cause__``).
_OUTAGE_TYPES: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    PoolTimeout,
    ConnectionError,
    OSError,  # refused or reset connections, connect and command timeouts
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.InternalClientError,  # a connection left unusable by a server-side end
)
# SQLSTATEs with the same meaning: connection exceptions (08xxx), operator intervention (57P01
# admin shutdown, 57P02 crash shutdown, 57P03 "the database system is starting up"), 53300
# too many connections, 57014 a statement cancelled by statement_timeout (an overloaded database) and
# 55P03 a lock not granted within lock_timeout (a stalled table: the request deadline's first line).
_OUTAGE_SQLSTATES = ("08", "57P", "53300", "57014", "55P03")


def unavailable_from(error: BaseException) -> Unavailable | None:
    """The ``Unavailable`` that ``error`` (or what it wraps) means when the database is down,
    stalled or out of connections; None for anything else (a bug, a constraint, or an error that
    already is an ``Unavailable``). The one rule every SQL entry point translates outages by."""
    current: BaseException | None = error
    for _ in range(6):
        if current is None or isinstance(current, Unavailable):
            return None
        if isinstance(current, asyncpg.exceptions.DataError):
            return None  # an argument the driver cannot encode: a bug here, not an outage
        sqlstate = getattr(current, "sqlstate", None) or getattr(current, "pgcode", None)
        if (
            isinstance(current, _OUTAGE_TYPES)
            or (isinstance(current, DBAPIError) and current.connection_invalidated)
            or (isinstance(sqlstate, str) and sqlstate.startswith(_OUTAGE_SQLSTATES))
        ):
            # Type names only: the text of a wrapped database error holds the statement and its parameters.
            return Unavailable("database", type(current).__name__)
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) and orig is not current else current.__cause__
    return None


@contextmanager
def outages_as_unavailable() -> Iterator[None]:
    """Raise what ``unavailable_from`` finds in the block's error instead of it (chained to it)."""
    try:
        yield
    except Exception as error:
        outage = unavailable_from(error)
        if outage is None:
            raise
        raise outage from error
