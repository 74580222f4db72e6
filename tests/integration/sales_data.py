"""Insert order lines straight into the database (thousands at once) for report and mail tests."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import insert

from adapters.sql.tables import CategoryRow, OrderLineRow, OrderRow, ProductRow, table_of
from domain.ids import new_id


@dataclass
class Expected:
    lines: int = 0
    placed_quantity: int = 0
    placed_total: Decimal = field(default_factory=lambda: Decimal("0.00"))


async def add_product(db: Any, seller_id: uuid.UUID, name: str, price: Decimal) -> uuid.UUID:
    now = datetime.now(UTC)
    category_id, product_id = new_id(), new_id()
    async with db.engine.begin() as conn:
        await conn.execute(
            insert(table_of(CategoryRow)).values(
                id=category_id, name="Things", slug=f"things-{category_id.hex[:12]}", created_at=now, updated_at=now
            )
        )
        await conn.execute(
            insert(table_of(ProductRow)).values(
                id=product_id,
                seller_id=seller_id,
                category_id=category_id,
                name=name,
                description="",
                price=price,
                stock=10**6,
                created_at=now,
                updated_at=now,
            )
        )
    return product_id


async def add_order(
    db: Any,
    buyer_id: uuid.UUID,
    lines: list[tuple[uuid.UUID, uuid.UUID, str, Decimal, int]],
    *,
    at: datetime,
    status: str = "placed",
) -> uuid.UUID:
    """One order; lines are (product_id, seller_id, name, unit_price, quantity)."""
    order_id = new_id()
    total = sum((price * qty for _, _, _, price, qty in lines), Decimal("0"))
    async with db.engine.begin() as conn:
        await conn.execute(
            insert(table_of(OrderRow)).values(
                id=order_id, buyer_id=buyer_id, status=status, total=total, created_at=at, updated_at=at
            )
        )
        await conn.execute(
            insert(table_of(OrderLineRow)),
            [
                {
                    "id": new_id(),
                    "order_id": order_id,
                    "product_id": product_id,
                    "seller_id": seller_id,
                    "buyer_id": buyer_id,
                    "name": name,
                    "unit_price": price,
                    "quantity": qty,
                    "line_total": price * qty,
                    "created_at": at,
                    "updated_at": at,
                }
                for product_id, seller_id, name, price, qty in lines
            ],
        )
    return order_id


async def add_sales(
    db: Any,
    *,
    seller_id: uuid.UUID,
    other_seller_id: uuid.UUID,
    buyer_id: uuid.UUID,
    count: int,
    start: datetime,
    days: int,
    seed: int = 7,
) -> Expected:
    """``count`` lines of ``seller_id`` spread over ``days`` from ``start`` (every 10th order
    cancelled), plus noise the report must leave out: another seller's lines and lines outside
    the period. Returns what the report should contain."""
    rng = random.Random(seed)
    product = await add_product(db, seller_id, 'Lamp, "deluxe"', Decimal("19.99"))
    foreign = await add_product(db, other_seller_id, "Not mine", Decimal("5.00"))
    expected = Expected()
    orders: list[dict[str, Any]] = []
    lines: list[dict[str, Any]] = []
    span = timedelta(days=days).total_seconds()

    def line(
        order_id: uuid.UUID, at: datetime, product_id: uuid.UUID, seller: uuid.UUID, price: Decimal, qty: int
    ) -> None:
        lines.append(
            {
                "id": new_id(),
                "order_id": order_id,
                "product_id": product_id,
                "seller_id": seller,
                "buyer_id": buyer_id,
                "name": 'Lamp, "deluxe"' if product_id == product else "Not mine",
                "unit_price": price,
                "quantity": qty,
                "line_total": price * qty,
                "created_at": at,
                "updated_at": at,
            }
        )

    index = 0
    while expected.lines < count:
        at = start + timedelta(seconds=rng.uniform(0, span - 1))
        order_id, status = new_id(), "cancelled" if index % 10 == 9 else "placed"
        index += 1
        orders.append(
            {
                "id": order_id,
                "buyer_id": buyer_id,
                "status": status,
                "total": Decimal("0"),
                "created_at": at,
                "updated_at": at,
            }
        )
        for _ in range(min(4, count - expected.lines)):
            price, qty = Decimal(rng.randint(1, 99_999)) / 100, rng.randint(1, 5)
            line(order_id, at, product, seller_id, price, qty)
            expected.lines += 1
            if status == "placed":
                expected.placed_quantity += qty
                expected.placed_total += price * qty
        line(order_id, at, foreign, other_seller_id, Decimal("5.00"), 1)
    for outside in (start - timedelta(seconds=1), start + timedelta(days=days)):
        order_id = new_id()
        orders.append(
            {
                "id": order_id,
                "buyer_id": buyer_id,
                "status": "placed",
                "total": Decimal("0"),
                "created_at": outside,
                "updated_at": outside,
            }
        )
        line(order_id, outside, product, seller_id, Decimal("1.00"), 1)
    async with db.engine.begin() as conn:
        await conn.execute(insert(table_of(OrderRow)), orders)
        await conn.execute(insert(table_of(OrderLineRow)), lines)
    return expected
