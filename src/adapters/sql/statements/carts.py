"""Cart lines (a user's or a guest cart's) and guest carts.

Race safety lives in the statements: the line upsert (``ON CONFLICT .. DO UPDATE`` with the
quantity cap in its WHERE) and guarded updates of guest carts. Nothing reads a row to decide how
to write it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BindParameter, bindparam, case, delete, insert, select, update

from adapters.sql.statements.common import any_of, columns, upsert
from adapters.sql.tables import CART_ITEMS, GUEST_CARTS, PRODUCTS, USERS
from domain.orders import QUANTITY_MAX

# Each statement exists twice, once per owner column (each leads its own unique index).
OWNER_COLUMNS = {"user": CART_ITEMS.c.user_id, "guest": CART_ITEMS.c.guest_cart_id}


def _add_line(owner: str) -> Any:
    """Insert a line, or add to the owner's line of that product while the sum stays within the cap.
    Over the cap nothing is written and no row returns (no constraint error to recover from)."""
    stmt = upsert(CART_ITEMS)
    summed = CART_ITEMS.c.quantity + stmt.excluded.quantity
    return stmt.on_conflict_do_update(
        index_elements=[OWNER_COLUMNS[owner], CART_ITEMS.c.product_id],
        set_={"quantity": summed, "price_at_add": stmt.excluded.price_at_add, "updated_at": stmt.excluded.updated_at},
        where=summed <= QUANTITY_MAX,
    ).returning(
        CART_ITEMS.c.id,
        CART_ITEMS.c.quantity,
        CART_ITEMS.c.price_at_add,
        CART_ITEMS.c.created_at,
        CART_ITEMS.c.updated_at,
    )


def _merge_line(owner: str) -> Any:
    """A merged guest line: the sum, capped at ``cap``, never below the line already there
    (``domain.orders.merged_quantity``)."""
    stmt = upsert(CART_ITEMS)
    summed = CART_ITEMS.c.quantity + stmt.excluded.quantity
    cap: BindParameter[int] = bindparam("cap")
    quantity = case((summed <= cap, summed), (CART_ITEMS.c.quantity >= cap, CART_ITEMS.c.quantity), else_=cap)
    return stmt.on_conflict_do_update(
        index_elements=[OWNER_COLUMNS[owner], CART_ITEMS.c.product_id],
        set_={"quantity": quantity, "price_at_add": stmt.excluded.price_at_add, "updated_at": stmt.excluded.updated_at},
    )


_ENTRY_COLUMNS = (
    *columns(CART_ITEMS, "id", "quantity", "price_at_add"),
    PRODUCTS.c.id.label("product_id"),
    PRODUCTS.c.name.label("product_name"),
    PRODUCTS.c.price.label("product_price"),
    PRODUCTS.c.image_url.label("product_image_url"),
    PRODUCTS.c.stock.label("product_stock"),
    PRODUCTS.c.seller_id.label("product_seller_id"),
    USERS.c.username.label("product_seller_username"),
)
_OLDEST_FIRST = (CART_ITEMS.c.created_at, CART_ITEMS.c.id)


def _of_live_products(owner: str) -> tuple[Any, ...]:
    """The owner's lines whose products are live, joined to those products and their sellers."""
    return (
        OWNER_COLUMNS[owner] == bindparam("owner_id"),
        PRODUCTS.c.id == CART_ITEMS.c.product_id,
        PRODUCTS.c.withdrawn_at.is_(None),
        USERS.c.id == PRODUCTS.c.seller_id,
    )


def _lines(owner: str, *, one: bool = False) -> Any:
    """The owner's lines with their live products and sellers, oldest first."""
    stmt = select(*_ENTRY_COLUMNS).where(*_of_live_products(owner)).order_by(*_OLDEST_FIRST)
    if one:
        stmt = stmt.where(CART_ITEMS.c.id == bindparam("line_id"))
    return stmt


def _take_for_checkout(owner: str) -> Any:
    """Postgres: the lines ``_lines`` reads, deleted and returned in one statement (oldest first).

    The delete locks the lines until the transaction ends, so a second checkout of the cart waits
    and then finds them gone; a checkout that fails rolls back and they are in the cart again.
    SQLite reads ``LINES`` and then runs ``REMOVE_LINES`` (its writers take turns)."""
    taken = (
        delete(CART_ITEMS)
        .where(*_of_live_products(owner))
        .returning(*_ENTRY_COLUMNS, CART_ITEMS.c.created_at)
        .cte("taken")
    )
    return select(*(taken.c[c.name] for c in _ENTRY_COLUMNS)).order_by(taken.c.created_at, taken.c.id)


def _per_owner(build: Any, **options: Any) -> dict[str, Any]:
    return {owner: build(owner, **options) for owner in OWNER_COLUMNS}


ADD_LINE = _per_owner(_add_line)
MERGE_LINE = _per_owner(_merge_line)
LINES = _per_owner(_lines)
LINE = _per_owner(_lines, one=True)
TAKE_FOR_CHECKOUT_POSTGRES = _per_owner(_take_for_checkout)
SET_QUANTITY = {
    owner: update(CART_ITEMS)
    .where(CART_ITEMS.c.id == bindparam("line_id"), column == bindparam("owner_id"))
    .values(quantity=bindparam("quantity"), updated_at=bindparam("now"))
    for owner, column in OWNER_COLUMNS.items()
}
REMOVE_LINE = {
    owner: delete(CART_ITEMS).where(CART_ITEMS.c.id == bindparam("line_id"), column == bindparam("owner_id"))
    for owner, column in OWNER_COLUMNS.items()
}
CLEAR = {owner: delete(CART_ITEMS).where(column == bindparam("owner_id")) for owner, column in OWNER_COLUMNS.items()}
REMOVE_LINES = delete(CART_ITEMS).where(any_of(CART_ITEMS.c.id, "line_ids", by_key=True))

GUEST_CART_COLUMNS = columns(GUEST_CARTS, "id", "token_hash", "created_at", "last_used_at", "spent_at")
INSERT_GUEST_CART = insert(GUEST_CARTS)
GUEST_CART_BY_HASH = select(*GUEST_CART_COLUMNS).where(GUEST_CARTS.c.token_hash == bindparam("token_hash"))
TOUCH_GUEST_CART = (
    update(GUEST_CARTS)
    .where(
        GUEST_CARTS.c.id == bindparam("cart_id"),
        GUEST_CARTS.c.spent_at.is_(None),
        GUEST_CARTS.c.last_used_at < bindparam("now"),
    )
    .values(last_used_at=bindparam("now"), updated_at=bindparam("now"))
)
# FOR SHARE conflicts with the row lock SPEND_GUEST_CART's UPDATE takes: a merge waits for this
# transaction (and then sees its line), or this one waits for the merge and sees it spent.
HOLD_GUEST_CART = (
    select(GUEST_CARTS.c.id)
    .where(GUEST_CARTS.c.id == bindparam("cart_id"), GUEST_CARTS.c.spent_at.is_(None))
    .with_for_update(read=True)
)
# The guard is the WHERE: a racing transaction waits on the row lock (Postgres) or the writer lock
# (SQLite), then finds spent_at set and updates nothing.
SPEND_GUEST_CART = (
    update(GUEST_CARTS)
    .where(
        GUEST_CARTS.c.token_hash == bindparam("token"),
        GUEST_CARTS.c.spent_at.is_(None),
        GUEST_CARTS.c.last_used_at > bindparam("used_after"),
    )
    .values(spent_at=bindparam("now"), updated_at=bindparam("now"))
    .returning(GUEST_CARTS.c.id)
)
STALE_GUEST_CARTS = (
    select(GUEST_CARTS.c.id)
    .where(GUEST_CARTS.c.last_used_at < bindparam("unused_since"))
    .order_by(GUEST_CARTS.c.last_used_at)
    .limit(bindparam("limit"))
)
REMOVE_LINES_OF_GUEST_CARTS = delete(CART_ITEMS).where(any_of(CART_ITEMS.c.guest_cart_id, "cart_ids"))
REMOVE_GUEST_CARTS = delete(GUEST_CARTS).where(any_of(GUEST_CARTS.c.id, "cart_ids", by_key=True))
