"""Cart lines, orders and stock on SQL (Postgres and SQLite).

Race safety lives in the statements: the cart upsert (``ON CONFLICT .. DO UPDATE``), the order
insert (``ON CONFLICT (buyer_id, idempotency_key) DO NOTHING``), the all-or-nothing stock take
and guarded updates for order status. Nothing reads a row to decide how to write it.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    and_,
    bindparam,
    case,
    column,
    delete,
    func,
    insert,
    literal,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.sql.tables import CartItemRow, GuestCartRow, OrderLineRow, OrderRow, ProductRow, UserRow, table_of
from application.pagination import Keyset
from application.ports.orders import (
    CartEntry,
    CartProductView,
    CartSellerView,
    Purchasable,
    SaleEntry,
    SaleView,
)
from domain.orders import QUANTITY_MAX, CartLine, CartOwner, GuestCart, Order, OrderLine, OrderStatus

C = table_of(CartItemRow)
G = table_of(GuestCartRow)
P = table_of(ProductRow)
U = table_of(UserRow)
O = table_of(OrderRow)  # noqa: E741
L = table_of(OrderLineRow)


def _insert(dialect: str) -> Any:
    """The dialect's INSERT, which knows ``ON CONFLICT``."""
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def _rowcount(result: Any) -> int:
    return int(result.rowcount)


def _take_all_postgres() -> Any:
    """All of an order's stock in one statement: lock, check, decrement, all or nothing.

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
    v = (
        func.unnest(
            bindparam("ids", type_=postgresql.ARRAY(postgresql.UUID(as_uuid=True))),
            bindparam("quantities", type_=postgresql.ARRAY(Integer)),
        )
        .table_valued(column("id", postgresql.UUID(as_uuid=True)), column("q", Integer))
        .render_derived(name="v")
    )
    want = select(v.c.id, v.c.q).cte("want")
    locked = (
        select(P.c.id, and_(P.c.stock >= want.c.q, P.c.withdrawn_at.is_(None)).label("enough"))
        .join_from(P, want, P.c.id == want.c.id)
        .order_by(P.c.id)
        .with_for_update(of=P, key_share=True)  # FOR NO KEY UPDATE
        .cte("locked")
    )
    all_enough = select(func.count()).select_from(locked).where(locked.c.enough).scalar_subquery()
    taken = (
        update(P)
        .where(P.c.id == want.c.id, all_enough == bindparam("n", type_=Integer))
        .values(stock=P.c.stock - want.c.q, updated_at=bindparam("now", type_=P.c.updated_at.type))
        .cte("taken")
    )
    return select(locked.c.id, locked.c.enough).add_cte(taken)


_TAKE_ALL_POSTGRES = _take_all_postgres()


def _before(created_at: Any, row_id: Any, after: Keyset) -> ColumnElement[bool]:
    """Keyset predicate ``(created_at, id) < after`` as a row comparison, so Postgres can range-scan
    the (owner, created_at, id) index; the bound values carry the columns' types (UTC, GUID)."""
    return tuple_(created_at, row_id) < tuple_(literal(after[0], created_at.type), literal(after[1], row_id.type))


def owned_by(owner: CartOwner) -> ColumnElement[bool]:
    """The owner's lines: by ``user_id`` or by ``guest_cart_id`` (each with its unique index)."""
    if owner.user_id is not None:
        return C.c.user_id == owner.user_id
    return C.c.guest_cart_id == owner.guest_cart_id


def _owner_key(by_user: bool) -> list[Any]:
    """The unique (owner, product) constraint an upsert of a user's (or a guest cart's) line
    conflicts on."""
    return [C.c.user_id if by_user else C.c.guest_cart_id, C.c.product_id]


def _line_values(line: CartLine) -> dict[str, Any]:
    return {
        "id": line.id,
        "user_id": line.owner.user_id,
        "guest_cart_id": line.owner.guest_cart_id,
        "product_id": line.product_id,
        "quantity": line.quantity,
        "price_at_add": line.price_at_add,
        "created_at": line.created_at,
        "updated_at": line.updated_at,
    }


class SqlCartRepository:
    def __init__(self, session: AsyncSession, dialect: str) -> None:
        self.s = session
        self.dialect = dialect

    async def add(self, line: CartLine) -> tuple[CartLine, bool] | None:
        stmt = _insert(self.dialect)(C).values(**_line_values(line))
        summed = C.c.quantity + stmt.excluded.quantity
        stmt = stmt.on_conflict_do_update(
            index_elements=_owner_key(line.owner.user_id is not None),
            set_={
                "quantity": summed,
                "price_at_add": stmt.excluded.price_at_add,
                "updated_at": stmt.excluded.updated_at,
            },
            # Over the maximum: no update, no row returned, and no constraint error to recover from.
            where=summed <= QUANTITY_MAX,
        ).returning(C.c.id, C.c.quantity, C.c.price_at_add, C.c.created_at, C.c.updated_at)
        row = (await self.s.execute(stmt)).first()
        if row is None:
            return None
        stored = CartLine(
            id=row.id,
            owner=line.owner,
            product_id=line.product_id,
            quantity=row.quantity,
            price_at_add=row.price_at_add,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )
        # Our fresh id came back only if the row is new.
        return stored, row.id == line.id

    async def add_capped(self, lines: Sequence[tuple[CartLine, int]]) -> None:
        # One batch per conflict target (user lines, guest lines); a merge has only one.
        batches: dict[bool, list[dict[str, Any]]] = defaultdict(list)
        for line, line_cap in lines:
            batches[line.owner.user_id is not None].append({**_line_values(line), "cap": line_cap})
        for by_user, rows in batches.items():
            stmt = _insert(self.dialect)(C)
            summed = C.c.quantity + stmt.excluded.quantity
            cap = bindparam("cap", type_=Integer)
            stmt = stmt.on_conflict_do_update(
                index_elements=_owner_key(by_user),
                set_={
                    # domain.orders.merged_quantity: the sum, capped, never below the line's own.
                    "quantity": case((summed <= cap, summed), (C.c.quantity >= cap, C.c.quantity), else_=cap),
                    "price_at_add": stmt.excluded.price_at_add,
                    "updated_at": stmt.excluded.updated_at,
                },
            )
            # executemany: one prepared statement, the rows (each with its cap) sent in one batch.
            await self.s.execute(stmt, rows)

    async def set_quantity(self, line_id: uuid.UUID, owner: CartOwner, quantity: int, now: datetime) -> bool:
        result = await self.s.execute(
            update(C).where(C.c.id == line_id, owned_by(owner)).values(quantity=quantity, updated_at=now)
        )
        return _rowcount(result) > 0

    async def remove(self, line_id: uuid.UUID, owner: CartOwner) -> bool:
        result = await self.s.execute(delete(C).where(C.c.id == line_id, owned_by(owner)))
        return _rowcount(result) > 0

    async def remove_lines(self, line_ids: list[uuid.UUID]) -> None:
        if line_ids:
            await self.s.execute(delete(C).where(C.c.id.in_(line_ids)))

    async def clear(self, owner: CartOwner) -> None:
        await self.s.execute(delete(C).where(owned_by(owner)))

    async def entries(
        self, owner: CartOwner, *, line_id: uuid.UUID | None = None, for_checkout: bool = False
    ) -> list[CartEntry]:
        stmt = (
            select(
                C.c.id,
                C.c.quantity,
                C.c.price_at_add,
                P.c.id.label("product_id"),
                P.c.name,
                P.c.price,
                P.c.image_url,
                P.c.stock,
                P.c.seller_id,
                U.c.username,
            )
            .select_from(C.join(P, P.c.id == C.c.product_id).join(U, U.c.id == P.c.seller_id))
            .where(owned_by(owner), P.c.withdrawn_at.is_(None))
            .order_by(C.c.created_at, C.c.id)
        )
        if line_id is not None:
            stmt = stmt.where(C.c.id == line_id)
        if for_checkout:
            stmt = stmt.with_for_update(of=C)  # Postgres only; SQLite's writer lock already serializes
        rows = (await self.s.execute(stmt)).all()
        return [
            CartEntry(
                id=row.id,
                quantity=row.quantity,
                price_at_add=row.price_at_add,
                product=CartProductView(
                    id=row.product_id,
                    name=row.name,
                    price=row.price,
                    image_url=row.image_url,
                    stock=row.stock,
                    seller=CartSellerView(id=row.seller_id, username=row.username),
                ),
            )
            for row in rows
        ]


_GUEST_COLUMNS = (G.c.id, G.c.token_hash, G.c.created_at, G.c.last_used_at, G.c.spent_at)


def guest_cart_of(row: Any) -> GuestCart:
    return GuestCart(id=row[0], token_hash=row[1], created_at=row[2], last_used_at=row[3], spent_at=row[4])


class SqlGuestCartRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def add(self, cart: GuestCart) -> None:
        await self.s.execute(
            insert(G).values(
                id=cart.id,
                token_hash=cart.token_hash,
                last_used_at=cart.last_used_at,
                spent_at=cart.spent_at,
                created_at=cart.created_at,
                updated_at=cart.created_at,
            )
        )

    async def get_by_hash(self, token_hash: str) -> GuestCart | None:
        row = (await self.s.execute(select(*_GUEST_COLUMNS).where(G.c.token_hash == token_hash))).first()
        return guest_cart_of(row) if row is not None else None

    async def touch(self, cart_id: uuid.UUID, now: datetime) -> None:
        await self.s.execute(
            update(G)
            .where(G.c.id == cart_id, G.c.spent_at.is_(None), G.c.last_used_at < now)
            .values(last_used_at=now, updated_at=now)
        )

    async def hold(self, cart_id: uuid.UUID) -> bool:
        # FOR SHARE conflicts with the row lock spend()'s UPDATE takes: a merge waits for this
        # transaction (and then sees its line), or this one waits for the merge and sees it spent.
        # SQLite's writer lock already serializes the two.
        stmt = select(G.c.id).where(G.c.id == cart_id, G.c.spent_at.is_(None)).with_for_update(read=True)
        return (await self.s.execute(stmt)).first() is not None

    async def spend(self, token_hash: str, *, now: datetime, used_after: datetime) -> uuid.UUID | None:
        # The guard is the WHERE: a racing transaction waits on the row lock (Postgres) or the
        # writer lock (SQLite), then finds spent_at set and updates nothing.
        row = (
            await self.s.execute(
                update(G)
                .where(G.c.token_hash == token_hash, G.c.spent_at.is_(None), G.c.last_used_at > used_after)
                .values(spent_at=now, updated_at=now)
                .returning(G.c.id)
            )
        ).first()
        return row[0] if row is not None else None

    async def purge(self, *, unused_since: datetime, limit: int) -> int:
        stale = select(G.c.id).where(G.c.last_used_at < unused_since).order_by(G.c.last_used_at).limit(limit)
        ids = list((await self.s.execute(stale)).scalars())
        if ids:
            await self.s.execute(delete(C).where(C.c.guest_cart_id.in_(ids)))
            await self.s.execute(delete(G).where(G.c.id.in_(ids)))
        return len(ids)


class SqlInventoryRepository:
    def __init__(self, session: AsyncSession, dialect: str) -> None:
        self.s = session
        self.dialect = dialect

    async def purchasable(self, product_id: uuid.UUID) -> Purchasable | None:
        row = (
            await self.s.execute(
                select(P.c.id, P.c.seller_id, P.c.name, P.c.price, P.c.stock).where(
                    P.c.id == product_id, P.c.withdrawn_at.is_(None)
                )
            )
        ).first()
        if row is None:
            return None
        return Purchasable(id=row.id, seller_id=row.seller_id, name=row.name, price=row.price, stock=row.stock)

    async def take_all(self, quantities: Mapping[uuid.UUID, int], now: datetime) -> uuid.UUID | None:
        if not quantities:
            return None
        if self.dialect == "postgresql":
            ids = sorted(quantities)
            rows = await self.s.execute(
                _TAKE_ALL_POSTGRES,
                {"ids": ids, "quantities": [quantities[i] for i in ids], "n": len(ids), "now": now},
            )
            enough = {row.id: row.enough for row in rows}
            return next((product_id for product_id in ids if not enough.get(product_id, False)), None)
        # SQLite: units of work run one at a time, so guarded updates in product-id order; the
        # savepoint undoes the ones already made when a later product falls short.
        savepoint = await self.s.begin_nested()
        for product_id in sorted(quantities):
            quantity = quantities[product_id]
            result = await self.s.execute(
                update(P)
                .where(P.c.id == product_id, P.c.stock >= quantity, P.c.withdrawn_at.is_(None))
                .values(stock=P.c.stock - quantity, updated_at=now)
            )
            if _rowcount(result) != 1:
                await savepoint.rollback()
                return product_id
        await savepoint.commit()
        return None

    async def put_back(self, product_id: uuid.UUID, quantity: int, now: datetime) -> None:
        await self.s.execute(update(P).where(P.c.id == product_id).values(stock=P.c.stock + quantity, updated_at=now))


_ORDER_COLUMNS = (O.c.id, O.c.buyer_id, O.c.status, O.c.total, O.c.idempotency_key, O.c.created_at, O.c.updated_at)


class SqlOrderRepository:
    def __init__(self, session: AsyncSession, dialect: str) -> None:
        self.s = session
        self.dialect = dialect

    async def add(self, order: Order) -> bool:
        stmt = (
            _insert(self.dialect)(O)
            .values(
                id=order.id,
                buyer_id=order.buyer_id,
                status=order.status.value,
                total=order.total,
                idempotency_key=order.idempotency_key,
                created_at=order.created_at,
                updated_at=order.updated_at,
            )
            .on_conflict_do_nothing(index_elements=[O.c.buyer_id, O.c.idempotency_key])
            .returning(O.c.id)
        )
        if (await self.s.execute(stmt)).first() is None:
            return False
        rows = [
            {
                "id": line.id,
                "order_id": order.id,
                "product_id": line.product_id,
                "seller_id": line.seller_id,
                "buyer_id": order.buyer_id,
                "name": line.name,
                "unit_price": line.unit_price,
                "quantity": line.quantity,
                "line_total": line.line_total,
                "created_at": order.created_at,
                "updated_at": order.created_at,
            }
            for line in order.lines
        ]
        # The executemany form: SQLAlchemy caches its compiled statement and sends the rows in one
        # batch (insertmanyvalues or asyncpg's pipelined executemany). ``insert().values(rows)``
        # would be one statement too, but has no cache key: it was compiled on every checkout.
        await self.s.execute(insert(L), rows)
        return True

    async def _with_lines(self, rows: list[Any]) -> list[Order]:
        """Attach lines to a page of orders with one more statement (never one per order)."""
        if not rows:
            return []
        lines: dict[uuid.UUID, list[OrderLine]] = defaultdict(list)
        line_rows = await self.s.execute(
            select(L.c.id, L.c.order_id, L.c.product_id, L.c.seller_id, L.c.name, L.c.unit_price, L.c.quantity)
            .where(L.c.order_id.in_([row.id for row in rows]))
            .order_by(L.c.id)
        )
        for line in line_rows:
            lines[line.order_id].append(
                OrderLine(
                    id=line.id,
                    order_id=line.order_id,
                    product_id=line.product_id,
                    seller_id=line.seller_id,
                    name=line.name,
                    unit_price=line.unit_price,
                    quantity=line.quantity,
                )
            )
        return [
            Order(
                id=row.id,
                buyer_id=row.buyer_id,
                status=OrderStatus(row.status),
                total=row.total,
                created_at=row.created_at,
                updated_at=row.updated_at,
                lines=lines[row.id],
                idempotency_key=row.idempotency_key,
            )
            for row in rows
        ]

    async def get(self, order_id: uuid.UUID, buyer_id: uuid.UUID) -> Order | None:
        rows = (await self.s.execute(select(*_ORDER_COLUMNS).where(O.c.id == order_id, O.c.buyer_id == buyer_id))).all()
        orders = await self._with_lines(list(rows))
        return orders[0] if orders else None

    async def get_by_idempotency_key(self, buyer_id: uuid.UUID, key: str) -> Order | None:
        rows = (
            await self.s.execute(select(*_ORDER_COLUMNS).where(O.c.buyer_id == buyer_id, O.c.idempotency_key == key))
        ).all()
        orders = await self._with_lines(list(rows))
        return orders[0] if orders else None

    async def list_for_buyer(self, buyer_id: uuid.UUID, *, limit: int, after: Keyset | None) -> list[Order]:
        stmt = select(*_ORDER_COLUMNS).where(O.c.buyer_id == buyer_id)
        if after is not None:
            stmt = stmt.where(_before(O.c.created_at, O.c.id, after))
        stmt = stmt.order_by(O.c.created_at.desc(), O.c.id.desc()).limit(limit)
        return await self._with_lines(list((await self.s.execute(stmt)).all()))

    async def change_status(
        self, order_id: uuid.UUID, *, expected: OrderStatus, new: OrderStatus, now: datetime
    ) -> bool:
        result = await self.s.execute(
            update(O).where(O.c.id == order_id, O.c.status == expected.value).values(status=new.value, updated_at=now)
        )
        return _rowcount(result) == 1

    async def sales(self, seller_id: uuid.UUID, *, limit: int, after: Keyset | None) -> list[SaleEntry]:
        stmt = (
            select(
                L.c.id,
                L.c.order_id,
                L.c.product_id,
                L.c.name,
                L.c.unit_price,
                L.c.quantity,
                L.c.line_total,
                L.c.created_at,
                O.c.status,
            )
            .select_from(L.join(O, O.c.id == L.c.order_id))
            .where(L.c.seller_id == seller_id)
        )
        if after is not None:
            stmt = stmt.where(_before(L.c.created_at, L.c.id, after))
        stmt = stmt.order_by(L.c.created_at.desc(), L.c.id.desc()).limit(limit)
        return [
            SaleEntry(
                line_id=row.id,
                sale=SaleView(
                    order_id=row.order_id,
                    product_id=row.product_id,
                    name=row.name,
                    unit_price=row.unit_price,
                    quantity=row.quantity,
                    line_total=row.line_total,
                    status=row.status,
                    created_at=row.created_at,
                ),
            )
            for row in (await self.s.execute(stmt)).all()
        ]
