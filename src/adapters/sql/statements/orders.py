"""Orders, their lines and the stock they take.

The order insert is ``ON CONFLICT (buyer_id, idempotency_key) DO NOTHING``, so a replayed
checkout inserts nothing; stock is taken by guarded updates (all or nothing) and order status
changes by guarded updates too.
"""

from __future__ import annotations

from typing import Any

from advanced_alchemy.types import GUID
from sqlalchemy import Integer, Select, and_, bindparam, column, func, insert, select, true, update
from sqlalchemy.dialects import postgresql

from adapters.sql.statements.common import any_of, columns, keyset_pages, upsert
from adapters.sql.tables import ORDER_LINES, ORDERS, PRODUCTS, USERS

ORDER_COLUMNS = columns(ORDERS, "id", "buyer_id", "status", "total", "idempotency_key", "created_at", "updated_at")
INSERT_ORDER = (
    upsert(ORDERS)
    .on_conflict_do_nothing(index_elements=[ORDERS.c.buyer_id, ORDERS.c.idempotency_key])
    .returning(ORDERS.c.id)
)
INSERT_ORDER_LINE = insert(ORDER_LINES)
ORDER_OF_BUYER = select(*ORDER_COLUMNS).where(
    ORDERS.c.id == bindparam("order_id"), ORDERS.c.buyer_id == bindparam("buyer_id")
)
ORDER_BY_IDEMPOTENCY_KEY = select(*ORDER_COLUMNS).where(
    ORDERS.c.buyer_id == bindparam("buyer_id"), ORDERS.c.idempotency_key == bindparam("idempotency_key")
)
ORDERS_OF_BUYER = keyset_pages(
    select(*ORDER_COLUMNS).where(ORDERS.c.buyer_id == bindparam("buyer_id")), ORDERS.c.created_at, ORDERS.c.id
)
# The lines of a page of orders in one statement (never one per order).
LINES_OF_ORDERS = (
    select(
        ORDER_LINES.c.id,
        ORDER_LINES.c.order_id,
        ORDER_LINES.c.product_id,
        ORDER_LINES.c.seller_id,
        ORDER_LINES.c.name,
        ORDER_LINES.c.unit_price,
        ORDER_LINES.c.quantity,
    )
    .where(any_of(ORDER_LINES.c.order_id, "order_ids", by_key=True))
    .order_by(ORDER_LINES.c.id)
)
CHANGE_STATUS = (
    update(ORDERS)
    .where(ORDERS.c.id == bindparam("order_id"), ORDERS.c.status == bindparam("expected"))
    .values(status=bindparam("status"), updated_at=bindparam("now"))
)

# A seller's sales: their order lines with the order's status, newest first.
_SALES = (
    select(
        ORDER_LINES.c.id.label("line_id"),
        ORDER_LINES.c.order_id,
        ORDER_LINES.c.product_id,
        ORDER_LINES.c.name,
        ORDER_LINES.c.unit_price,
        ORDER_LINES.c.quantity,
        ORDER_LINES.c.line_total,
        ORDERS.c.status,
        ORDER_LINES.c.created_at,
    )
    .select_from(ORDER_LINES.join(ORDERS, ORDERS.c.id == ORDER_LINES.c.order_id))
    .where(ORDER_LINES.c.seller_id == bindparam("seller_id"))
)
SALES = keyset_pages(_SALES, ORDER_LINES.c.created_at, ORDER_LINES.c.id)
# The sales report's lines of a period, oldest first, a batch at a time (keyset; the
# (seller_id, created_at, id) index serves the filter and the order).
_PERIOD = (
    ORDER_LINES.c.seller_id == bindparam("seller_id"),
    ORDER_LINES.c.created_at >= bindparam("start"),
    ORDER_LINES.c.created_at < bindparam("end"),
)
SALES_OF_PERIOD = keyset_pages(_SALES.where(*_PERIOD), ORDER_LINES.c.created_at, ORDER_LINES.c.id, descending=False)

PURCHASABLE = select(PRODUCTS.c.id, PRODUCTS.c.seller_id, PRODUCTS.c.name, PRODUCTS.c.price, PRODUCTS.c.stock).where(
    PRODUCTS.c.id == bindparam("product_id"), PRODUCTS.c.withdrawn_at.is_(None)
)
PUT_BACK = (
    update(PRODUCTS)
    .where(PRODUCTS.c.id == bindparam("product_id"))
    .values(stock=PRODUCTS.c.stock + bindparam("quantity"), updated_at=bindparam("now"))
)
# SQLite takes stock product by product (its writers take turns), inside a savepoint.
TAKE_ONE = (
    update(PRODUCTS)
    .where(
        PRODUCTS.c.id == bindparam("product_id"),
        PRODUCTS.c.stock >= bindparam("quantity"),
        PRODUCTS.c.withdrawn_at.is_(None),
    )
    .values(stock=PRODUCTS.c.stock - bindparam("quantity"), updated_at=bindparam("now"))
)


def _take_all() -> Select[Any]:
    """Postgres: all of an order's stock in one statement: lock, check, decrement, all or nothing.

    ``locked`` locks the wanted product rows in product-id order (the lock is applied after
    ``ORDER BY``), so two checkouts with overlapping products, in whatever order their carts list
    them, queue on the same first row instead of deadlocking; the UPDATE that follows touches only
    rows already locked, in whatever order its join visits them. A plain ``UPDATE .. FROM (VALUES
    ..)`` would lock in the planner's join order, which is not guaranteed. The lock is ``FOR NO KEY
    UPDATE``, the one the UPDATE itself takes: ``FOR UPDATE`` would also wait for the ``KEY SHARE``
    locks other checkouts' order lines hold on the same products (their foreign key), and two
    checkouts would deadlock there. ``enough`` is computed from the latest committed row (a waiting
    lock re-reads it), and the UPDATE runs only if every wanted product is live and has enough, so
    a shortfall changes nothing. The statement returns each found product with its ``enough``; a
    product missing from the answer does not exist. Arrays (not an ``IN``/``VALUES`` list) keep the
    text, and so the prepared statement, the same for any number of lines.
    """
    wanted = (
        func.unnest(
            bindparam("ids", type_=postgresql.ARRAY(postgresql.UUID(as_uuid=True))),
            bindparam("quantities", type_=postgresql.ARRAY(Integer)),
        )
        .table_valued(column("id", postgresql.UUID(as_uuid=True)), column("q", Integer))
        .render_derived(name="wanted")
    )
    # ``LIMIT :n`` keeps all n rows; it is there for the plan. Postgres re-plans a prepared
    # statement on every call while its generic plan looks worse than one made for the actual
    # values, and a generic plan guesses 100 elements for an array: 100 product lookups looked
    # worse every time. With the limit it guesses 10, and the generic plan is kept after five calls
    # (a sixth of a checkout's Postgres CPU was this planning).
    want = select(wanted.c.id, wanted.c.q).limit(bindparam("n", type_=Integer)).cte("want")
    locked = (
        select(PRODUCTS.c.id, and_(PRODUCTS.c.stock >= want.c.q, PRODUCTS.c.withdrawn_at.is_(None)).label("enough"))
        .join_from(PRODUCTS, want, PRODUCTS.c.id == want.c.id)
        .order_by(PRODUCTS.c.id)
        .with_for_update(of=PRODUCTS, key_share=True)  # FOR NO KEY UPDATE
        .cte("locked")
    )
    all_enough = select(func.count()).select_from(locked).where(locked.c.enough).scalar_subquery()
    taken = (
        update(PRODUCTS)
        .where(PRODUCTS.c.id == want.c.id, all_enough == bindparam("n", type_=Integer))
        .values(stock=PRODUCTS.c.stock - want.c.q, updated_at=bindparam("now", type_=PRODUCTS.c.updated_at.type))
        .cte("taken")
    )
    return select(locked.c.id, locked.c.enough).add_cte(taken)


TAKE_ALL_POSTGRES = _take_all()


def _place_order() -> Select[Any]:
    """Postgres: an order and all its lines in one statement, one round trip whatever the cart holds.

    The order is the same upsert as ``INSERT_ORDER`` (a taken idempotency key inserts nothing);
    the lines come from one array per column of ``LINE_FIELDS`` (``each_<column>``), so the text,
    and so the prepared statement, is the same for any number of lines. They are inserted only
    with the order: the statement returns how many lines it inserted, 0 when the key was taken.
    SQLite runs ``INSERT_ORDER`` and then ``INSERT_ORDER_LINE`` as a batch."""
    order = (
        upsert(ORDERS)
        .values({name: bindparam(name, type_=ORDERS.c[name].type) for name in _ORDER_FIELDS})
        .on_conflict_do_nothing(index_elements=[ORDERS.c.buyer_id, ORDERS.c.idempotency_key])
        .returning(ORDERS.c.id, ORDERS.c.buyer_id, ORDERS.c.created_at)
        .cte("new_order")
    )
    types = {name: _array_item_type(ORDER_LINES.c[name].type) for name in LINE_FIELDS}
    arrays = [bindparam(f"each_{name}", type_=postgresql.ARRAY(types[name])) for name in LINE_FIELDS]
    line = (
        func.unnest(*arrays)
        .table_valued(*(column(name, types[name]) for name in LINE_FIELDS))
        .render_derived(name="line")
    )
    lines = (
        insert(ORDER_LINES)
        .from_select(
            [*LINE_FIELDS, "order_id", "buyer_id", "created_at", "updated_at"],
            select(
                *(line.c[name] for name in LINE_FIELDS),
                order.c.id,
                order.c.buyer_id,
                order.c.created_at,
                order.c.created_at,
            ).select_from(order.join(line, true())),
        )
        .returning(ORDER_LINES.c.id)
        .cte("new_lines")
    )
    return select(func.count().label("lines")).select_from(lines)


def _array_item_type(column_type: Any) -> Any:
    """UUIDs go into arrays as asyncpg takes them (the GUID type would turn each into text first)."""
    return postgresql.UUID(as_uuid=True) if isinstance(column_type, GUID) else column_type


_ORDER_FIELDS = ("id", "buyer_id", "status", "total", "idempotency_key", "created_at", "updated_at")
LINE_FIELDS = ("id", "product_id", "seller_id", "name", "unit_price", "quantity", "line_total")
PLACE_ORDER_POSTGRES = _place_order()

# What the order emails show: the buyer's address while the account exists, and every line.
ORDER_FOR_MAIL = (
    select(
        ORDERS.c.id,
        ORDERS.c.status,
        ORDERS.c.total,
        ORDERS.c.created_at,
        USERS.c.email.label("buyer_email"),
        USERS.c.username.label("buyer_username"),
    )
    .select_from(ORDERS.outerjoin(USERS, and_(USERS.c.id == ORDERS.c.buyer_id, USERS.c.deleted_at.is_(None))))
    .where(ORDERS.c.id == bindparam("order_id"))
)
LINES_FOR_MAIL = (
    select(
        ORDER_LINES.c.product_id,
        ORDER_LINES.c.seller_id,
        ORDER_LINES.c.name,
        ORDER_LINES.c.unit_price,
        ORDER_LINES.c.quantity,
        ORDER_LINES.c.line_total,
    )
    .where(ORDER_LINES.c.order_id == bindparam("order_id"))
    .order_by(ORDER_LINES.c.created_at, ORDER_LINES.c.id)
)
